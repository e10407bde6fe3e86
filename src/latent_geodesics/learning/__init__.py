"""Active learning (Chen et al., IROS 2018): query selection (selection.py), the
loop (loop.py) and the service both front ends adapt (service.py), the store of
demonstrations (store.py), teachers and evaluation."""
