"""head_coverage: the closest student head of every teacher head, by mean-row KL (the paper's title claim)."""

import math

import torch

from amad.diagnostics import head_coverage


def _maps(b: int, h: int, q: int, k: int, seed: int) -> torch.Tensor:
    return torch.randn(b, h, q, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).softmax(-1)


def test_copied_heads_are_covered_and_the_others_are_not():
    teacher = _maps(2, 4, 3, 5, 0)
    student = teacher[:, [2, 0]].clone()  # student heads copy teacher heads 2 and 0
    kl, index = head_coverage(student, teacher)
    assert kl[0].item() < 1e-9 and kl[2].item() < 1e-9 and index[0] == 1 and index[2] == 0
    assert (kl[[1, 3]] > 1e-3).all()  # heads 1 and 3 are left behind


def test_matches_a_loop_reference_with_masks():
    teacher, student = _maps(2, 3, 4, 5, 1), _maps(2, 2, 4, 5, 2)
    qm = torch.tensor([[True, True, True, False], [True, True, False, False]])
    km = torch.tensor([[True, True, True, True, False], [True, True, True, False, False]])
    teacher = teacher * km[:, None, None, :]
    teacher = teacher / teacher.sum(-1, keepdim=True)
    got, _ = head_coverage(student, teacher, query_mask=qm, key_mask=km)
    for i in range(3):
        per_j = []
        for j in range(2):
            per_sample = []
            for b in range(2):
                rows = []
                for r in range(4):
                    if not qm[b, r]:
                        continue
                    keys = km[b].nonzero().flatten()
                    t, s = teacher[b, i, r, keys], student[b, j, r, keys] * 1.0
                    rows.append(sum(float(tv) * math.log(float(tv) / (float(sv) + 1e-12)) for tv, sv in zip(t, s)))
                per_sample.append(sum(rows) / len(rows))
            per_j.append(sum(per_sample) / len(per_sample))
        assert got[i].item() == min(per_j) or abs(got[i].item() - min(per_j)) < 1e-9
