"""Decodes the ROS 2 channels of an arbor run.mcap with the Foxglove libraries (mcap +
mcap-ros2-support), as a ROS tool would: prints one JSON line with, per topic, its type, count
and what the first message says. arbor's own channels (json) are skipped here."""
import json
import sys

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory


def main(path):
    out = {}
    with open(path, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        topics = [c.topic for c in summary.channels.values() if c.message_encoding == "cdr"]
        for schema, channel, message, msg in reader.iter_decoded_messages(topics=topics):
            t = out.setdefault(channel.topic, {"type": schema.name, "count": 0, "encoding": schema.encoding})
            t["count"] += 1
            if t["count"] > 1:
                continue
            if schema.name == "std_msgs/msg/String":
                t["data"] = msg.data
            elif schema.name == "nav_msgs/msg/Odometry":
                t["frame_id"] = msg.header.frame_id
                t["x"] = msg.pose.pose.position.x
            elif schema.name == "sensor_msgs/msg/Image":
                t["size"] = [msg.width, msg.height]
                t["encoding_px"] = msg.encoding
                t["bytes"] = len(msg.data)
            elif schema.name == "sensor_msgs/msg/CameraInfo":
                t["size"] = [msg.width, msg.height]
                t["k0"] = msg.k[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
