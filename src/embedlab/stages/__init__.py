"""One module per ``embedlab <stage>`` command: its arguments and its ``run``.

Each module has ``HELP`` (one line), ``add_arguments(parser)`` (the stage's input and output
paths, then the flags generated from its settings dataclass) and ``run(args, tracker)``, which
reads, computes, writes atomically and logs to the stage's MLflow run. ``embedlab.cli`` only
dispatches; a test calls ``run`` directly.
"""

STAGES = (
    "corpus",
    "synthesize",
    "teacher",
    "mine",
    "sweep",
    "train",
    "evaluate",
    "prefetch",
    "tables",
)
