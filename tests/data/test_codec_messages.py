"""The decoders' messages: TensorFlow's error text cleaned to its line, libjpeg's stderr dropped."""

import os

import pytest
import tensorflow as tf

from leafnet.data.codec_messages import clean_tf_error, is_decoder_noise, quiet_decoders

GRAPH_LAYOUT = (  # TensorFlow 2.21, a tf.function: the message before the node annotation
    "Graph execution error:\n\nDetected at node decode_image/DecodeImage defined at (most recent call last):\n"
    '  File "/x/predict.py", line 13, in <module>\n\n  File "/x/decode.py", line 159, in decode_image\n\n'
    "Input is empty.\n\t [[{{node decode_image/DecodeImage}}]] [Op:__inference_decode_image_3170]")
EAGER_LAYOUT = ("{{function_node __wrapped__DecodeImage_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
                "Invalid PNG. Failed to initialize decoder. [Op:DecodeImage] name: ")
AFTER_LAYOUT = "\t [[{{node DecodeImage}}]] Input is empty.\nsecond line [Op:IteratorGetNext]"
ASSERT_LAYOUT = ("Graph execution error:\n\nDetected at node Assert/Assert defined at (most recent call last):\n"
                 '  File "/x/decode.py", line 155, in decode_image\n\n'
                 "assertion failed: [image too large: 9000x9000 pixels, over the limit]\n\t [[{{node Assert/Assert}}]]")


@pytest.mark.parametrize("message, expected", [
    (GRAPH_LAYOUT, "Input is empty."),
    (EAGER_LAYOUT, "Invalid PNG. Failed to initialize decoder."),
    (AFTER_LAYOUT, "Input is empty."),
    (ASSERT_LAYOUT, "image too large: 9000x9000 pixels, over the limit"),
    ("Unknown image file format. One of JPEG, PNG, GIF, BMP required.",
     "Unknown image file format. One of JPEG, PNG, GIF, BMP required."),
])
def test_clean_tf_error_keeps_the_message_line(message, expected):
    assert clean_tf_error(tf.errors.InvalidArgumentError(None, None, message)) == expected


def test_clean_tf_error_of_a_real_graph_error_and_of_nothing():
    from leafnet.data.decode import decode_image

    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        decode_image(tf.constant(b""))
    assert clean_tf_error(e.value) == "Input is empty."
    assert clean_tf_error(ValueError("")) == "ValueError"
    assert clean_tf_error(tf.errors.InvalidArgumentError(None, None, "\t [[{{node x}}]] [Op:y]")) == \
        "InvalidArgumentError"


def test_decoder_noise_is_libjpeg_and_tensorflows_decoder_log_only():
    for line in ("Corrupt JPEG data: 56 extraneous bytes before marker 0xd9\n",
                 "Warning: unknown JFIF revision number 0.00\n", "Input file read error\n",
                 "Improper call to JPEG library in state 201\n", "Premature end of JPEG file\n",
                 "E0000 00:00:1796172029.238843    4964 jpeg_mem.cc:331] Premature end of JPEG data. "
                 "Stopped at line 0/24\n",
                 # the first uint8 decode graph's notice: the same results, nothing to act on
                 "E0000 00:00:1796172104.394576    7397 util.cc:131] oneDNN supports DT_UINT8 only on platforms "
                 "with AVX-512. Falling back to the default Eigen-based implementation if present.\n"):
        assert is_decoder_noise(line), line
    for line in ("E0000 00:00:1796172104.394576    7397 util.cc:131] something else\n",
                 "Traceback (most recent call last):\n", "UserWarning: Corrupt JPEG data in a sentence\n"):
        assert not is_decoder_noise(line), line


def test_quiet_decoders_drops_the_decoder_lines_and_re_emits_the_rest(capfd):
    os.write(2, b"before\n")
    with quiet_decoders():
        os.write(2, b"Corrupt JPEG data: premature end of data segment\nkeep me\n")
        os.write(2, b"Warning: unknown JFIF revision number 0.00\n")
        os.write(2, b"and me\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "before\nkeep me\nand me\nafter\n"


def test_quiet_decoders_restores_stderr_when_the_block_raises(capfd):
    with pytest.raises(RuntimeError):
        with quiet_decoders():
            os.write(2, b"Input file read error\nstill here\n")
            raise RuntimeError("boom")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "still here\nafter\n"
