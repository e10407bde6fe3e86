"""One client process of the ROS 2 load test (test_load.py), run as
`python load_client.py SERVICE CALLS TIMEOUT GO_FILE REQUEST_JSON`: waits for the
~/encode service SERVICE and one answer from it (first_answer), prints "ready",
waits for GO_FILE to exist (so that every process starts calling at once), makes
CALLS calls one after another, each given up after TIMEOUT s, and prints
{"answered", "refused" (answered with success false), "lost", "lost_at" (the calls'
indices)} as its last line. After three calls in a row
without an answer the rest count as lost (the server is gone).

Its client has a response queue as deep as the nodes' service queues: with ROS 2's
default depth of 10, among 24 callers a client now and then lost an answer the
server had sent (the answers to the others seem to fill its queue)."""
import copy
import json
import os
import sys
import time

import rclpy
from rclpy.qos import qos_profile_services_default

from latent_geodesics.srv import Encode

RESPONSE_QUEUE = 100   # the nodes' default service_queue_depth


def first_answer(node, client, request, tries=10, timeout=10.0):
    """One call answered before the counted ones. wait_for_service covers only the
    way to the server: a server whose side has not yet discovered this client's
    response reader drops the answer (seen for a first call while 24 processes
    started at once; the server had answered every request). Discovery is not what
    the test measures; the counted calls, all processes at once, are."""
    for _ in range(tries):
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        if future.done():
            return
        client.remove_pending_request(future)
    raise SystemExit("no answer to %d first calls" % tries)


def main(service, calls, timeout, go_file, request):
    rclpy.init()
    node = rclpy.create_node("load_client_%d" % os.getpid())
    qos = copy.copy(qos_profile_services_default)
    qos.depth = RESPONSE_QUEUE
    client = node.create_client(Encode, service, qos_profile=qos)
    if not client.wait_for_service(timeout_sec=120):
        raise SystemExit("no service %s" % service)
    first_answer(node, client, Encode.Request(**request))
    print("ready", flush=True)
    while not os.path.exists(go_file):
        time.sleep(0.002)
    answered = refused = lost = in_a_row = 0
    lost_at = []
    for i in range(calls):
        if in_a_row == 3:
            lost += 1
            continue
        future = client.call_async(Encode.Request(**request))
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        if not future.done():   # a caller without a timeout would wait forever
            lost, in_a_row = lost + 1, in_a_row + 1
            lost_at.append(i)
            client.remove_pending_request(future)
            continue
        answered, in_a_row = answered + 1, 0
        refused += not future.result().success
    print(json.dumps({"answered": answered, "refused": refused, "lost": lost,
                      "lost_at": lost_at}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4],
         json.loads(sys.argv[5]))
