# latent_geodesics — set-up, demo, tests and benchmarks.
#   make demo   the main job on the embedded default (simulated Panda arm)
#   make test   unit tests (pytest) and ROS integration tests (rostest)
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
  python3-venv python3-numpy python3-scipy \
  python3-matplotlib python3-yaml python3-lxml

# What the demo needs beside: rviz on a virtual screen for its screenshot.
DEMO_DEBS := rviz xvfb ros-robot-state-publisher python3-tf2-ros python3-tf2-msgs

# Shell prefix that puts the built workspace and the venv in front.
ROS_SETUP := $(if $(wildcard /opt/ros/noetic/setup.bash),source /opt/ros/noetic/setup.bash &&,)
ENV := $(ROS_SETUP) source $(WS)/devel/setup.bash && export PATH=$(VENV)/bin:$$PATH &&

PKG_FILES := package.xml CMakeLists.txt setup.py $(wildcard msg/*.msg srv/*.srv action/*.action scripts/*) \
  $(wildcard third_party/control_msgs/*/*) $(wildcard viz/* viz/*/*)

.PHONY: setup demo test unit rostest bench clean
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

# The core on current numpy 2: a venv without Debian's packages (ROS needs numpy 1).
VENV_NP2 := $(ROOT)/.venv-numpy2
$(VENV_NP2)/.installed: requirements-numpy2.txt $(VENV)/.ros-ok
	@[ -x $(VENV_NP2)/bin/python ] || /usr/bin/python3 -m venv $(VENV_NP2)
	$(VENV_NP2)/bin/python -m pip install -q -r requirements-numpy2.txt
	@touch $@

$(VENV)/.installed: requirements.txt $(VENV)/.ros-ok
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

# The package in the workspace is a directory of links to the package's parts, not a
# link to this whole tree: rosrun searches the package directory for executables and
# would find the workspace's own copies inside it.
PKG_PARTS := package.xml CMakeLists.txt setup.py msg srv action config launch scripts src test urdf

$(WS)/.built: $(PKG_FILES) Makefile $(VENV)/.installed
	@pkg=$(WS)/src/latent_geodesics; [ ! -L $$pkg ] || rm -rf $$pkg $(WS)/build $(WS)/devel; \
	mkdir -p $$pkg; \
	for part in $(PKG_PARTS); do ln -sfn $(ROOT)/$$part $$pkg/$$part; done; \
	if [ -d /opt/ros/noetic/share/control_msgs ] || [ -d /usr/share/control_msgs ]; then \
	  rm -f $(WS)/src/control_msgs; \
	else ln -sfn $(ROOT)/third_party/control_msgs $(WS)/src/control_msgs; fi; \
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

test: setup $(VENV)/.demo-ok $(VENV_NP2)/.installed   # the demo and viewer tests need rviz
	$(ENV) ruff check src test bench scripts
	$(ENV) python -m pytest -q test
	@echo "core tests on numpy $$($(VENV_NP2)/bin/python -c 'import numpy; print(numpy.__version__)')"
	PYTHONPATH=$(ROOT)/src $(VENV_NP2)/bin/python -m pytest -q test
	$(ENV) bash test/run_rostests.sh $(WS)

bench: setup
	$(PY) -m pip install -q --no-deps stochman==0.3.0   # the peer library, benchmark only
	$(ENV) python bench/run_all.py --device $(DEVICE) $(SECTIONS)

clean:
	rm -rf $(WS) $(OUT) $(VENV_NP2)
