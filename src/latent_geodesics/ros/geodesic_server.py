"""geodesic_server: hosts a trained IWAE and answers latent-geometry queries.

Services (private namespace): ~encode, ~decode. Parameters: ~model_dir,
~device (auto|cpu|cuda), ~joint_names (override). See config/geodesic_server.yaml.
"""
import time

import rospy

from latent_geodesics.engine import Engine, RequestError
from latent_geodesics.model import ModelError
from latent_geodesics.srv import Decode, DecodeResponse, Encode, EncodeResponse


def guarded(response_type):
    """Turn RequestError (and any surprise) into success=False; keep serving."""
    def wrap(handler):
        def call(self, req):
            try:
                return handler(self, req)
            except RequestError as e:
                return response_type(success=False, message=str(e))
            except Exception as e:  # never let one request take the node down
                rospy.logerr("%s failed: %r", handler.__name__, e)
                return response_type(success=False, message="internal error: %s" % e)
        return call
    return wrap


class GeodesicServer:
    def __init__(self):
        model_dir = rospy.get_param("~model_dir")
        device = rospy.get_param("~device", "auto")
        start = time.time()
        self.engine = Engine(model_dir, device, rospy.get_param("~joint_names", []))
        model = self.engine.served.model
        rospy.loginfo("model %s loaded on %s in %.2f s (%d joints, latent dim %d)",
                      model_dir, model.device, time.time() - start, model.x_dim, model.z_dim)
        self.encode_srv = rospy.Service("~encode", Encode, self.handle_encode)
        self.decode_srv = rospy.Service("~decode", Decode, self.handle_decode)

    @guarded(EncodeResponse)
    def handle_encode(self, req):
        dim, z = self.engine.encode(req.joint_names, req.positions)
        return EncodeResponse(success=True, message="encoded %d configurations" % len(z),
                              latent_dim=dim, latent=z.ravel().tolist())

    @guarded(DecodeResponse)
    def handle_decode(self, req):
        names, x = self.engine.decode(req.latent)
        return DecodeResponse(success=True, message="decoded %d points" % len(x),
                              joint_names=names, positions=x.ravel().tolist())


def main():
    rospy.init_node("geodesic_server")
    try:
        GeodesicServer()
    except (ModelError, RequestError, KeyError) as e:
        rospy.logfatal("geodesic_server cannot start: %s", e)
        raise SystemExit(1)
    rospy.loginfo("geodesic_server ready")
    rospy.spin()
