"""arbor in Gazebo: the world of sim/gazebo, ros_gz_bridge, Nav2 (optional) and the arbor node.

    ros2 launch arbor sim.launch.py                  # Gazebo Harmonic + bridge + Nav2 + arbor
    ros2 launch arbor sim.launch.py nav2:=false gui:=false

Gazebo publishes arbor_bot's camera, odometry and lidar; params/bridge.yaml maps them (and
cmd_vel, the clock) to the topics arbor uses. navigate_to sends goal_pose to Nav2's
bt_navigator; in this world odometry is exact, so a static map->odom transform stands in for
localization. Needs ros_gz_sim, ros_gz_bridge and (with nav2:=true) nav2_bringup.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    share = FindPackageShare("arbor")
    world = LaunchConfiguration("world")
    gui = LaunchConfiguration("gui")
    gazebo = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare("ros_gz_sim"), "launch", "gz_sim.launch.py"])),
        launch_arguments={
            # -r: run at once; -s: server only when gui:=false.
            "gz_args": [world, " -r", PythonExpression(["'' if '", gui, "' == 'true' else ' -s'"])],
            "on_exit_shutdown": "true",
        }.items(),
    )
    bridge = Node(
        package="ros_gz_bridge",
        executable="parameter_bridge",
        name="arbor_bridge",
        parameters=[{"config_file": PathJoinSubstitution([share, "params", "bridge.yaml"]), "use_sim_time": True}],
        output="screen",
    )
    # Odometry in this world is exact: map and odom coincide.
    map_to_odom = Node(
        package="tf2_ros",
        executable="static_transform_publisher",
        name="map_to_odom",
        arguments=["--frame-id", "map", "--child-frame-id", "odom"],
        parameters=[{"use_sim_time": True}],
    )
    nav2 = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("nav2_bringup"), "launch", "navigation_launch.py"])
        ),
        launch_arguments={"use_sim_time": "true"}.items(),
        condition=IfCondition(LaunchConfiguration("nav2")),
    )
    arbor = Node(
        package="arbor",
        executable="arbor",
        name="arbor",
        arguments=["run", "--config", LaunchConfiguration("config")],
        parameters=[PathJoinSubstitution([share, "params", "arbor.yaml"]), {"use_sim_time": True}],
        output="screen",
        emulate_tty=True,
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "world",
                default_value=PathJoinSubstitution([share, "gazebo", "worlds", "arbor_home.sdf"]),
                description="the SDF world",
            ),
            DeclareLaunchArgument(
                "config",
                default_value=PathJoinSubstitution([share, "params", "gazebo_node.yaml"]),
                description="arbor's node YAML for this world (its places and people)",
            ),
            DeclareLaunchArgument("gui", default_value="true"),
            DeclareLaunchArgument("nav2", default_value="true", description="start Nav2 for navigate_to"),
            gazebo,
            bridge,
            map_to_odom,
            nav2,
            arbor,
        ]
    )
