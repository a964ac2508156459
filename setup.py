"""Builds the native module rgemma/_rgemma*.so with CMake (the project's own
build: the same engine as the CLI) and puts it into the package.

RGEMMA_BUILD_DIR=DIR reuses an existing CMake build directory (e.g. build/)
instead of configuring a new one in build/python."""
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = os.environ.get("RGEMMA_BUILD_DIR") or os.path.join(ROOT, "build", "python")
        jobs = str(os.cpu_count() or 2)
        if not os.environ.get("RGEMMA_BUILD_DIR"):
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DRG_TESTS=OFF",
                                   f"-DPython3_EXECUTABLE={sys.executable}"])
        subprocess.check_call(["cmake", "--build", build, "-j", jobs, "--target", "_rgemma"])
        built = os.path.join(build, "python", "rgemma")
        so = [f for f in os.listdir(built) if f.startswith("_rgemma") and f.endswith(".so")]
        if not so:
            raise RuntimeError(f"the CMake build made no _rgemma*.so in {built}")
        dest = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(os.path.join(built, so[0]), dest)


setup(ext_modules=[Extension("rgemma._rgemma", sources=[])], cmdclass={"build_ext": CMakeBuild})
