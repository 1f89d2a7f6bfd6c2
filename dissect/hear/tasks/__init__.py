"""HEAR 2021 task directories: read them, and write them from our datasets.

A task directory (as built by hearpreprocess and read by hear-eval-kit)::

    task_metadata.json        task_name, version, embedding_type ("scene" | "event"),
                              prediction_type ("multiclass" | "multilabel"), split_mode
                              ("trainvaltest" | "presplit_kfold" | "new_split_kfold"), nfolds,
                              splits (["fold00", ...] or ["train", "valid", "test"]),
                              sample_duration (s), evaluation (score keys, primary first), mode
    labelvocabulary.csv       idx,label (labels sorted, unless a task orders them itself)
    <split>.json              scene: {"<file>.wav": [label, ...]}
                              event: {"<file>.wav": [{"label", "start", "end"}, ...]} (ms)
    <sample_rate>/<split>/<file>.wav

Writers (:func:`write_esc50_task`, :func:`write_spoken_digit_tasks`, :func:`write_synth_tasks`)
write one sample-rate directory (default 16000 Hz, the rate of our HEAR modules), resampled with
torchaudio, mono, trimmed or zero-padded at the end to ``sample_duration`` as hearpreprocess
does, as 32-bit float WAV without a timestamped PEAK chunk (so the same input always gives the
same bytes). A task is built in a temporary sibling directory and moved into place at the end,
so an interrupted write never leaves a half task behind.

Splits:

* ESC-50: its own 5 folds (``presplit_kfold``), ESC fold ``k`` -> ``fold0{k-1}``.
* spoken digits (FSDD naming ``{digit}_{speaker}_{index}``): 5 folds by take index,
  ``fold = index % 5`` (``new_split_kfold``); every digit x speaker pair is spread evenly, so
  both the digit task and the speaker task see every class in every fold.
* synth: 5 folds (``new_split_kfold``), stratified by label: within each label the clips are
  sorted by id, shuffled with ``random.Random("<seed>:<label>")`` and dealt round-robin,
  continuing the fold counter from one label to the next (labels in sorted order) so fold sizes
  differ by at most one. hearpreprocess splits unstratified by a hash of the file name; on our
  small synth tasks that leaves classes out of folds, hence the stratification.

Fold bookkeeping (hear-eval-kit, :func:`data_splits`): folds sorted; for fold ``i``: test = fold
``i``, valid = fold ``(i + 1) % k``, train = the others. ``trainvaltest`` tasks have one split.

Modules: :mod:`~dissect.hear.tasks.reader` (reading, fold bookkeeping),
:mod:`~dissect.hear.tasks.writer` (writing one task directory, shared helpers) and one writer per
source: :mod:`~dissect.hear.tasks.esc50`, :mod:`~dissect.hear.tasks.spoken_digit`,
:mod:`~dissect.hear.tasks.synth`. Their public names are re-exported here.
"""

from dissect.hear.tasks.esc50 import write_esc50_task
from dissect.hear.tasks.reader import (
    LABEL_VOCABULARY,
    SPLIT_MODES,
    TASK_METADATA,
    HearTask,
    data_splits,
    data_splits_from_folds,
    find_tasks,
    read_task,
)
from dissect.hear.tasks.spoken_digit import write_spoken_digit_tasks
from dissect.hear.tasks.synth import SYNTH_TASKS, synth_task_items, write_synth_tasks
from dissect.hear.tasks.writer import (
    SCENE_SCORES,
    TaskItem,
    stratified_folds,
    task_dir_name,
    trim_pad,
    wav_bytes,
    write_task,
)

__all__ = [
    "LABEL_VOCABULARY",
    "SCENE_SCORES",
    "SPLIT_MODES",
    "SYNTH_TASKS",
    "TASK_METADATA",
    "HearTask",
    "TaskItem",
    "data_splits",
    "data_splits_from_folds",
    "find_tasks",
    "read_task",
    "stratified_folds",
    "synth_task_items",
    "task_dir_name",
    "trim_pad",
    "wav_bytes",
    "write_esc50_task",
    "write_spoken_digit_tasks",
    "write_synth_tasks",
    "write_task",
]
