//! With the `ros2` feature against the PyPI ROS 2 wheels (.ci/rosenv), rcl pulls in type-support
//! libraries built for Python that reference libpython's symbols: link libpython then.
//! `ARBOR_ROS_LIBPYTHON` (set by .ci/rosenv's environment file) names it; on a robot with
//! /opt/ros/jazzy it is unset and nothing is added.

fn main() {
    println!("cargo:rerun-if-env-changed=ARBOR_ROS_LIBPYTHON");
    if std::env::var_os("CARGO_FEATURE_ROS2").is_none() {
        return;
    }
    let Some(lib) = std::env::var_os("ARBOR_ROS_LIBPYTHON") else { return };
    let lib = std::path::PathBuf::from(lib);
    if let (Some(dir), Some(name)) = (lib.parent(), lib.file_name().and_then(|n| n.to_str())) {
        let name = name.trim_start_matches("lib").split(".so").next().unwrap_or(name);
        println!("cargo:rustc-link-search=native={}", dir.display());
        // Linked even though nothing in arbor calls it (the linker would drop it otherwise).
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-l{name}");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}
