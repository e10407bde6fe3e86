# latent_geodesics — set-up, demo, tests and benchmarks.
#   make demo   the main job on the embedded default (simulated Panda arm)
#   make test   unit tests (pytest), ROS 1 integration tests (rostest), ROS 2 node tests
#   make setup-ros2   the ROS 2 (Jazzy) front end from PyPI's wheels, in .venv-ros2
#   make bench  benchmarks, results under bench/results/
# Every target does its own set-up, idempotently.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
WS := $(ROOT)/.ws
PY := $(VENV)/bin/python
OUT := $(ROOT)/out
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian's own ROS 1 packages (used unless /opt/ros/noetic exists).
ROS_DEBS := ros-core-python-dev catkin python3-rostest python3-actionlib \
  python3-rosbag rosbash python3-roslaunch python3-rosmaster rosout \
  ros-message-generation ros-message-runtime libstd-msgs-dev \
  libactionlib-msgs-dev libtrajectory-msgs-dev libsensor-msgs-dev \
  libgeometry-msgs-dev libnav-msgs-dev libdiagnostic-msgs-dev python3-diagnostic-updater \
  libshape-msgs-dev python3-shape-msgs python3-tf2-ros libvisualization-msgs-dev \
  python3-visualization-msgs \
  python3-venv python3-numpy python3-scipy \
  python3-matplotlib python3-yaml python3-lxml

# What the demo needs beside: rviz on a virtual screen for its screenshot.
DEMO_DEBS := rviz xvfb ros-robot-state-publisher python3-tf2-ros python3-tf2-msgs

# Shell prefix that puts the built workspace and the venv in front.
ROS_SETUP := $(if $(wildcard /opt/ros/noetic/setup.bash),source /opt/ros/noetic/setup.bash &&,)
ENV := $(ROS_SETUP) source $(WS)/devel/setup.bash && export PATH=$(VENV)/bin:$$PATH &&

# Upstream's message packages (third_party/README.md), built in the workspace only
# where no such package is installed; in dependency order.
VENDORED := control_msgs octomap_msgs object_recognition_msgs moveit_msgs
PKG_FILES := package.xml CMakeLists.txt setup.py $(wildcard msg/*.msg srv/*.srv action/*.action scripts/*) \
  $(foreach p,$(VENDORED),$(wildcard third_party/$(p)/* third_party/$(p)/*/*)) \
  $(wildcard viz/* viz/*/*)

.PHONY: setup setup-ros2 demo test unit rostest bench clean
# make bench DEVICE=cuda: the same sections on a GPU, results in bench-cuda.md beside;
# make bench SECTIONS="core train": only these sections (bench/run_all.py lists them).
DEVICE ?= cpu
SECTIONS ?=
setup: $(VENV)/.ros-ok $(VENV)/.installed $(WS)/.built

$(VENV)/.ros-ok: Makefile
	@missing=$$(for p in $(ROS_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	    | grep -q 'ok installed' || echo $$p; done); \
	if [ -f /opt/ros/noetic/setup.bash ]; then echo "using /opt/ros/noetic"; \
	elif [ -n "$$missing" ]; then \
	  echo "installing from Debian: $$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@[ -x $(PY) ] || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	@touch $@

# ROS 2 (Jazzy) and the core on current numpy 2: a venv without Debian's packages
# (ROS 1 needs numpy 1; Debian's ROS 1 modules share import names with the Jazzy
# wheels). ros2/setup.sh holds the pins and the wheels' include-path fix.
VENV_ROS2 := $(ROOT)/.venv-ros2
ROS2_DEBS := cmake g++ make python3-dev python3-venv
$(VENV_ROS2)/.installed: requirements-numpy2.txt ros2/setup.sh $(VENV)/.ros-ok
	@missing=$$(for p in $(ROS2_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	    | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing from Debian: $$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	bash ros2/setup.sh venv $(VENV_ROS2)
	@touch $@

$(VENV_ROS2)/.interfaces: $(VENV_ROS2)/.installed ros2/package.xml ros2/CMakeLists.txt \
    $(wildcard msg/*.msg srv/*.srv action/*.action third_party/ros2/*/* third_party/ros2/*/*/*)
	bash ros2/setup.sh interfaces $(VENV_ROS2)
	@touch $@

$(VENV_ROS2)/.package: $(VENV_ROS2)/.interfaces setup.py package.xml \
    $(shell find src -name '*.py' 2>/dev/null)
	bash ros2/setup.sh package $(VENV_ROS2)
	@touch $@

setup-ros2: $(VENV_ROS2)/.package

$(VENV)/.installed: requirements.txt $(VENV)/.ros-ok
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

# The package in the workspace is a directory of links to the package's parts, not a
# link to this whole tree: rosrun searches the package directory for executables and
# would find the workspace's own copies inside it.
PKG_PARTS := package.xml CMakeLists.txt setup.py msg srv action config launch scripts src test urdf \
  demo

$(WS)/.built: $(PKG_FILES) Makefile $(VENV)/.installed
	@pkg=$(WS)/src/latent_geodesics; [ ! -L $$pkg ] || rm -rf $$pkg $(WS)/build $(WS)/devel; \
	mkdir -p $$pkg; \
	for part in $(PKG_PARTS); do ln -sfn $(ROOT)/$$part $$pkg/$$part; done; \
	for msgs in $(VENDORED); do \
	  if [ -d /opt/ros/noetic/share/$$msgs ] || [ -d /usr/share/$$msgs ]; then \
	    rm -f $(WS)/src/$$msgs; \
	  else ln -sfn $(ROOT)/third_party/$$msgs $(WS)/src/$$msgs; fi; \
	done; \
	ln -sfn $(ROOT)/viz $(WS)/src/latent_geodesics_viz
	$(ROS_SETUP) cd $(WS) && catkin_make -DPYTHON_EXECUTABLE=$(PY) -DCATKIN_ENABLE_TESTING=ON \
	  -DCMAKE_BUILD_TYPE=Release > $(WS)/build.log 2>&1 || { tail -40 $(WS)/build.log; exit 1; }
	@touch $@

$(VENV)/.demo-ok: $(VENV)/.ros-ok
	@missing=$$(for p in $(DEMO_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	    | grep -q 'ok installed' || echo $$p; done); \
	if [ -f /opt/ros/noetic/setup.bash ]; then :; \
	elif [ -n "$$missing" ]; then \
	  echo "installing from Debian: $$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@touch $@

demo: setup $(VENV)/.demo-ok
	$(ENV) python scripts/demo --out $(OUT)

test: setup $(VENV)/.demo-ok setup-ros2   # the demo and viewer tests need rviz
	$(ENV) ruff check src test bench scripts demo
	$(ENV) python -m pytest -q test
	@echo "core tests on numpy $$($(VENV_ROS2)/bin/python -c 'import numpy; print(numpy.__version__)')"
	PYTHONPATH=$(ROOT)/src $(VENV_ROS2)/bin/python -m pytest -q test
	$(ENV) bash test/run_rostests.sh $(WS)
	bash test/run_ros2_tests.sh $(VENV_ROS2) $(WS)/build/latent_geodesics/test_fixture

bench: setup
	$(PY) -m pip install -q --no-deps stochman==0.3.0   # the peer library, benchmark only
	$(ENV) python bench/run_all.py --device $(DEVICE) $(SECTIONS)

clean:
	rm -rf $(WS) $(OUT) $(VENV_ROS2)
