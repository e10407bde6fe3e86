# Used by catkin_python_setup(); do not run directly.
from catkin_pkg.python_setup import generate_distutils_setup
from setuptools import setup

setup(**generate_distutils_setup(
    packages=["latent_geodesics"] + ["latent_geodesics." + sub for sub in (
        "geometry", "graph", "data", "sim", "world", "model", "serving", "learning", "ros", "ros2")],
    package_dir={"": "src"},
))
