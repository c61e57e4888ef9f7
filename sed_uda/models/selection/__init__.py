"""Model selection without target labels: the signals a validation epoch computes (`signals`) and the
rules that read them to pick the checkpoint that gets tested (`rules`)."""
