"""`leafnet.custom_objects.KERAS_OBJECTS` is every class leafnet registers with Keras, and
`import leafnet` alone registers them all once Keras is imported."""

import subprocess
import sys

import keras

from leafnet import custom_objects


def test_the_list_is_every_registered_leafnet_object():
    registered = {name: obj for name, obj in keras.saving.get_custom_objects().items() if name.startswith("leafnet>")}
    assert len(custom_objects.KERAS_OBJECTS) == len(set(custom_objects.KERAS_OBJECTS)) == 13
    assert registered == {f"leafnet>{cls.__name__}": cls for cls in custom_objects.KERAS_OBJECTS}
    for cls in custom_objects.KERAS_OBJECTS:
        assert keras.saving.get_registered_name(cls) == f"leafnet>{cls.__name__}"
        assert getattr(custom_objects, cls.__name__) is cls
    assert custom_objects.RectifiedAdam is custom_objects.RAdam
    names = [cls.__name__ for cls in custom_objects.KERAS_OBJECTS] + ["RectifiedAdam"]
    assert sorted(custom_objects.__all__) == sorted(names)


def test_import_leafnet_registers_the_list():
    """In a fresh process: `import leafnet`, then Keras, registers each listed class (the
    registration hook), without importing `leafnet.custom_objects` itself."""
    code = (
        "import sys, leafnet, keras; "
        "names = sorted(n for n in keras.saving.get_custom_objects() if n.startswith('leafnet>')); "
        "print('custom_objects imported:', 'leafnet.custom_objects' in sys.modules); print(*names)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "custom_objects imported: False"
    assert out[1].split() == sorted(f"leafnet>{cls.__name__}" for cls in custom_objects.KERAS_OBJECTS)
