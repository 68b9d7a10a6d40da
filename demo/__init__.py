"""The `make demo` walkthrough: the whole pipeline on the bundled sample, through Dagster."""
