"""Serving geodesics to a robot, free of ROS: the service both front ends adapt
(service.py) over the engine (engine.py: settings, the served model, swapping),
request parsing, planning, timing (trajectory.py), fidelity to the data, typed
results, the robot's state, execution's rules and the guarded URDF reader."""
