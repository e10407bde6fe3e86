"""The robot's world, free of ROS: its body (links covered by spheres, posed by
batched forward kinematics), the scene of objects around it, and the collision
checks that keep every served motion clear of them."""
