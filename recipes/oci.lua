-- pflask-oci: an OCI runtime (the command line runc and crun implement) on
-- top of pflask's engine, for podman, containerd and Kubernetes.
--
--   pflask-oci [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...
--
-- See pflask-oci(1); the work is in the pflask.oci module.
return require("pflask.oci").cli(...)
