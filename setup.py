"""The build (metadata in setup.cfg): codex_lite.py also goes in the wheel as
`codex_lite-stubs/__init__.pyi`, so that type checkers read its annotations.

A single-file module cannot carry a `py.typed` marker (PEP 561); a stub-only
package named `<module>-stubs` is what the typing spec gives it, and it may
ship in the module's own distribution. The stub is the module itself, copied
here at build time, so it cannot drift from it.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class _BuildPy(build_py):
    def run(self) -> None:
        super().run()
        stubs = Path(self.build_lib, "codex_lite-stubs")
        self.mkpath(str(stubs))
        self.copy_file("codex_lite.py", str(stubs / "__init__.pyi"))


setup(cmdclass={"build_py": _BuildPy})
