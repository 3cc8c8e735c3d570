"""Azure Functions blueprints: one module per trigger, each thin over ``shared``/``training``."""
