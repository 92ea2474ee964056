"""Teacher-student compatibility checks (one family, one vocabulary, one tokenizer)."""

from __future__ import annotations

from amad.errors import ConfigError
from amad.models.base import DistillModel


def check_compatible(teacher: DistillModel, student: DistillModel) -> None:
    """Raise ConfigError unless the student can be distilled from the teacher.

    They must be of the same family and task (they share one collated batch), have the same number of vocabulary
    rows (logit distillation compares (B, T, V) tensors), and the same tokenizer vocabulary.
    """
    if teacher.family != student.family:
        raise ConfigError(
            f"teacher family {teacher.family!r} differs from student family {student.family!r}: "
            "distil within one family (they share a batch)"
        )
    if teacher.task != student.task:
        raise ConfigError(f"teacher task {teacher.task!r} differs from student task {student.task!r}: use one task")
    if teacher.vocab_size != student.vocab_size:
        raise ConfigError(
            f"teacher has {teacher.vocab_size} vocabulary rows but the student has {student.vocab_size}: "
            "build the student with the teacher's tokenizer"
        )
    if teacher.tokenizer.get_vocab() != student.tokenizer.get_vocab():
        raise ConfigError(
            "teacher and student tokenizers differ (same size, different tokens): build the student with the "
            "teacher's tokenizer"
        )
