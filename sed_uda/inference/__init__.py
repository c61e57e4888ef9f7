"""Using a trained model: self-contained checkpoints, `sed_uda.load_model`, and `sed-uda classify`.

checkpoint.py   read a checkpoint safely, compare it with a configuration
model.py        the checkpoint's model and input recipe, ready to predict (`load_model`)
audio.py        find, load and check recordings; their frame features
speakers.py     who speaks in each recording, for per-speaker models (`classify --speaker-from`)
classify.py     the `sed-uda classify` command: batch, table, CSV/JSON
"""
