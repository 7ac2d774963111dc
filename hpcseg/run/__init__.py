"""Running one invocation: the job (driver), batches on the cluster, the worker's task,
progress and the summary."""
