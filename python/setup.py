"""Puts libmamba3_runtime.so inside the package: the file $MAMBA3_RUNTIME_LIBRARY names (e.g. the
build tree's build/lib/libmamba3_runtime.so), else one built here from ../runtime with CMake
(runtime only: a C++ compiler is all it needs, no MLIR, no CUDA toolkit)."""
import glob
import os
import shutil
import subprocess
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithRuntime(build_py):
    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "mamba3", "lib")
        os.makedirs(dest, exist_ok=True)
        lib = os.environ.get("MAMBA3_RUNTIME_LIBRARY")
        if lib:
            shutil.copyfile(os.path.realpath(lib), os.path.join(dest, "libmamba3_runtime.so"))
            return
        src = os.path.dirname(HERE)
        with tempfile.TemporaryDirectory() as build:
            gen = ["-G", "Ninja"] if shutil.which("ninja") else []
            subprocess.check_call(["cmake", "-S", src, "-B", build, *gen, "-DCMAKE_BUILD_TYPE=Release",
                                   "-DMAMBA3_RUNTIME_ONLY=ON", "-DMAMBA3_BUILD_TESTS=OFF"])
            subprocess.check_call(["cmake", "--build", build, "--target", "mamba3_runtime"])
            built = glob.glob(os.path.join(build, "lib", "libmamba3_runtime.so.*.*.*"))[0]
            shutil.copyfile(built, os.path.join(dest, "libmamba3_runtime.so"))


setup(cmdclass={"build_py": BuildWithRuntime})
