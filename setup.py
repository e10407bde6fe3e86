# Used by catkin_python_setup(); do not run directly.
from catkin_pkg.python_setup import generate_distutils_setup
from setuptools import setup

setup(**generate_distutils_setup(
    packages=["latent_geodesics", "latent_geodesics.data", "latent_geodesics.ros",
              "latent_geodesics.ros2", "latent_geodesics.demo"],
    package_dir={"": "src"},
))
