"""Floor 1, records: what one run leaves and how it is written: its identity and name, its status and result.json,
its checkpoint, the atomic files and checksums, the lock of its directory, its log lines, Ctrl-C and SIGTERM, and
the GPU leases of a job."""
