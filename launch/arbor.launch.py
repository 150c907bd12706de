"""arbor on a robot: the arbor node with its parameters.

    ros2 launch arbor arbor.launch.py                      # defaults from share/arbor/params
    ros2 launch arbor arbor.launch.py config:=/etc/arbor/node.yaml namespace:=robot1 \
        image_topic:=/camera/color/image_raw

The node reads two files: `config` (arbor's YAML: the robot's places, the people it knows,
perception, navigation; see params/node.yaml) and `params_file` (ROS parameters: topic names,
QoS, frames, rates; see params/arbor.yaml). Topic names can also be remapped here.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    share = FindPackageShare("arbor")
    config = LaunchConfiguration("config")
    params_file = LaunchConfiguration("params_file")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "config",
                default_value=PathJoinSubstitution([share, "params", "node.yaml"]),
                description="arbor's node YAML (places, people, perception, navigation, out_dir)",
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value=PathJoinSubstitution([share, "params", "arbor.yaml"]),
                description="ROS parameters of the node (topics, QoS, frames, tick rate)",
            ),
            DeclareLaunchArgument("namespace", default_value="", description="the robot's namespace"),
            DeclareLaunchArgument(
                "image_topic",
                default_value="/camera/color/image_raw",
                description="the camera driver's image topic",
            ),
            DeclareLaunchArgument(
                "camera_info_topic",
                default_value="/camera/color/camera_info",
                description="the camera driver's CameraInfo topic",
            ),
            DeclareLaunchArgument("use_sim_time", default_value="false"),
            Node(
                package="arbor",
                executable="arbor",
                name="arbor",
                namespace=LaunchConfiguration("namespace"),
                arguments=["run", "--config", config],
                parameters=[params_file, {"use_sim_time": LaunchConfiguration("use_sim_time")}],
                remappings=[
                    ("camera/image_raw", LaunchConfiguration("image_topic")),
                    ("camera/camera_info", LaunchConfiguration("camera_info_topic")),
                ],
                output="screen",
                emulate_tty=True,
            ),
        ]
    )
