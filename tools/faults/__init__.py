"""The parts of tools/fault_fit.py: the fault hooks run inside the job (``hooks``), a case and
its checks (``case``), and the fault kinds (``kinds``). Imported with tools/ on ``sys.path``, as
``python tools/fault_fit.py`` puts it there."""
