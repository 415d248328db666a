"""An empty stand-in for torchvision, so that timm's model code imports without it.

timm imports torchvision at module level in a few places a model never uses (dataset
classes, transforms, ``FrozenBatchNorm2d``), and PyPI's torchvision does not import beside
the CPU torch build installed here. Importing this module makes every ``torchvision.*``
import succeed with placeholder classes; only the timm benchmark worker imports it, and
only when torchvision is missing.
"""

import importlib.abc
import importlib.machinery
import sys
import types

import torch


class _Meta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return f"{cls.__name__}.{name}"   # e.g. InterpolationMode.NEAREST, used as a dict key


class _Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        cls = _Meta(name, (torch.nn.Module,), {"__module__": self.__name__})
        setattr(self, name, cls)
        return cls


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _Stub(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Finder())
