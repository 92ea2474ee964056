"""BLIP teachers and students (VQA and captioning) behind the DistillModel interface.

VQA: vision_model -> text_encoder (question "<enc> q </s>", cross-attends the image) -> text_decoder (answer
"<s> a </s>", cross-attends the question-encoder states). Caption: vision_model -> text_decoder ("<s> prompt
caption </s>", cross-attends the image; the prompt is masked out of the loss). The wrapper calls the three
submodules directly, because transformers' top-level forwards drop the text attentions and the logits.

Decoder layout: ``prefix`` = [bos] (VQA) or [bos, prompt...] (caption), length P; labels (B, T) hold the target
tokens + sep (-100 on padding). The decoder reads ``prefix + labels[:, :-1]`` (length P + T - 1) and the logits
at positions P - 1 .. P + T - 2 predict ``labels``.

VQA examples with several weighted targets (``Example.targets``, BLIP's recipe: every distinct answer, weight
count / n) collate to R >= B label rows with ``Batch.label_owner`` (R,); the question states are tiled per answer,
as ``blip_vqa.py`` does, and the loss sums a question's weighted answers and averages over the B questions.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer

from amad.errors import CheckpointError, ConfigError
from amad.models.base import FAMILIES, META_FILE, DistillModel, generation_lengths, weighted_token_loss
from amad.models.blip import checkpoint as ckpt
from amad.models.sizes import resolve_size
from amad.types import AttentionMaps, Batch, Example, ModelOutput

# BLIP's own recipe, used for checkpoints that carry no amad_model.json (the released Salesforce models). Label
# smoothing (BLIP: 0.1) is a training setting: TrainConfig.label_smoothing.
HUB_DEFAULTS = {"prompt": "a picture of "}


def _route_cross_attention_mask(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook fixing transformers 5.24 BLIP text cross-attention, which drops the encoder padding mask.

    ``BlipTextLayer`` hands the (B, 1, Q, K) encoder mask to ``crossattention`` as ``attention_mask``, but
    ``BlipTextSelfAttention`` reads ``encoder_attention_mask`` when it has encoder states, so padded question
    tokens would be attended by the VQA answer decoder. A no-op once transformers passes the mask itself.
    """
    if kwargs.get("encoder_hidden_states") is not None and kwargs.get("encoder_attention_mask") is None:
        kwargs = {**kwargs, "encoder_attention_mask": kwargs.get("attention_mask")}
    return args, kwargs


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)  # (B, L)


@FAMILIES.register("blip")
class BlipModel(DistillModel):
    """A BLIP model of task "vqa" or "caption" wrapping ``BlipForQuestionAnswering`` / ``BlipForConditionalGeneration``.

    Attributes:
        size: the size dict it was built from (saved in amad_model.json).
        label_smoothing: of the task loss (0.0; the training loop sets TrainConfig.label_smoothing, BLIP's is 0.1).
        prompt: caption prompt masked out of the loss (size key, default "").
        init_report: the load report of ``build(init=...)`` (amad.models.loading.LoadReport as a dict; None for
            random init).
    """

    family = "blip"
    TASKS = ("vqa", "caption")

    def __init__(self, model: torch.nn.Module, tokenizer: Any, task: str, size: dict[str, Any]) -> None:
        super().__init__(model, tokenizer, task)
        self.prompt = str(size.get("prompt", ""))
        # folders saved before label smoothing became a training setting carry it in their size: ignored
        self.size = {**{k: v for k, v in size.items() if k != "label_smoothing"}, "prompt": self.prompt}
        self.max_source_length = 32
        self.max_target_length = 10 if task == "vqa" else 20
        self._answer_targets: tuple[tuple[str, ...], torch.Tensor] | None = None  # rank inference's encoded list
        text = model.config.text_config
        self.bos_id, self.sep_id, self.pad_id = text.bos_token_id, text.sep_token_id, text.pad_token_id
        self.enc_id = ckpt.special_ids(tokenizer, task)["enc"] if task == "vqa" else None
        self.image_size = int(model.config.vision_config.image_size)
        for name, module in model.named_modules():
            if name.endswith("crossattention.self"):
                module.register_forward_pre_hook(_route_cross_attention_mask, with_kwargs=True)

    # ---- construction -------------------------------------------------------------------------------------------
    @classmethod
    def check_task(cls, task: str) -> None:
        """Raise ConfigError unless BLIP supports ``task``."""
        if task == "translation":
            raise ConfigError("BLIP has no Multi30K/translation task: use family vlt5 for translation")
        if task not in cls.TASKS:
            raise ConfigError(f"unknown BLIP task {task!r}: choose one of {', '.join(cls.TASKS)}")

    @classmethod
    def build(
        cls,
        task: str,
        size: Any,
        tokenizer: Any,
        *,
        init: str = "random",
        init_from: str | None = None,
        teacher: DistillModel | None = None,
        layer_pairs: list[tuple[int, int]] | None = None,
    ) -> BlipModel:
        """Build a BLIP of ``size`` (name or dict) for ``task``.

        init: "random"; "pretrained" (every weight from the BLIP checkpoint ``init_from``, default
        ``size["pretrained"]``: a transformers folder or hub id, or BLIP's original ``.pth``; only extra vocabulary
        rows may keep their initialisation, see amad.models.loading);
        "teacher" (``teacher``'s layers at ``layer_pairs`` (student, teacher), or a uniform mapping when None).
        ``init_report`` records what was copied.
        """
        cls.check_task(task)
        size = resolve_size(size, "blip")
        model = cls(ckpt.new_hf_model(task, ckpt.blip_config(task, size, tokenizer)), tokenizer, task, size)
        if init == "pretrained":
            source = init_from or size.get("pretrained")
            if not source:
                raise ConfigError("init='pretrained' needs init_from (a BLIP checkpoint folder or hub id)")
            model.init_report = ckpt.load_pretrained(model.model, str(source), task)  # a .pth, folder or hub id
        elif init == "teacher":
            if not isinstance(teacher, BlipModel) or teacher.task != task:
                raise ConfigError(f"init='teacher' needs a BLIP {task} teacher model, got {type(teacher).__name__}")
            model.init_report = ckpt.copy_teacher_layers(model.model, teacher.model, task, layer_pairs).to_json()
        elif init != "random":
            raise ConfigError(f"unknown init {init!r}: choose random, pretrained or teacher")
        return model

    # ---- data ---------------------------------------------------------------------------------------------------
    def _ids(self, text: str, limit: int) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"][:limit]

    def collate(self, examples: Sequence[Example], visual: Any, train: bool) -> Batch:
        """Pixels from ``visual.get(image_id)`` (3, S, S); question or prompt ids; target ids + sep as labels.

        Labels are built for every batch (validation losses need them) from ``target``; with ``train`` and examples
        that carry several ``targets`` (VQA), one label row per target, weighted, with ``label_owner``.
        """
        if visual is None:
            raise ConfigError("BLIP needs images: pass an ImageStore as the visual input")
        pixels = []
        for ex in examples:
            image = np.asarray(visual.get(ex.image_id), dtype=np.float32)
            if image.shape != (3, self.image_size, self.image_size):
                raise ConfigError(
                    f"image {ex.image_id!r} has shape {image.shape} but this BLIP expects (3, {self.image_size}, "
                    f"{self.image_size}): rebuild the image cache at the model's image_size"
                )
            pixels.append(torch.from_numpy(image))
        if self.task == "vqa":
            sources = [[self.enc_id, *self._ids(ex.source, self.max_source_length - 2), self.sep_id] for ex in examples]
        else:
            prompt = [self.bos_id, *self._ids(self.prompt, self.max_source_length - 1)]
            sources = [list(prompt) for _ in examples]
        input_ids = _pad(sources, self.pad_id)  # (B, L)
        attention_mask = torch.tensor([[i < len(s) for i in range(input_ids.shape[1])] for s in sources])  # (B, L)
        several = train and any(ex.targets for ex in examples)
        if several and self.task != "vqa":
            raise ConfigError("several targets per example are BLIP's VQA recipe: captions train one per example")
        rows: list[tuple[int, str, float]] = []  # (example row, target text, weight) per label row
        for i, ex in enumerate(examples):
            targets = ex.targets if several and ex.targets else ((ex.target, ex.target_weight),)
            rows += [(i, text, float(weight)) for text, weight in targets]
        labels = _pad([[*self._ids(text, self.max_target_length - 1), self.sep_id] for _, text, _ in rows], -100)
        return Batch(
            input_ids=input_ids,
            attention_mask=attention_mask,
            labels=labels,  # (R, T); R = B unless several targets
            label_weights=torch.tensor([weight for _, _, weight in rows]),  # (R,)
            label_owner=torch.tensor([i for i, _, _ in rows]) if several else None,  # (R,)
            pixel_values=torch.stack(pixels),  # (B, 3, S, S)
            uids=[ex.uid for ex in examples],
            references=[list(ex.references) for ex in examples],
            answer_types=[ex.answer_type for ex in examples],
        )

    # ---- model --------------------------------------------------------------------------------------------------
    def _prefix(self, batch: Batch, rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder prefix ids and mask, (B, P): [bos] for VQA ((rows, 1) when given), [bos, prompt...] for captions."""
        if self.task == "vqa":
            n = len(batch) if rows is None else rows
            ids = torch.full((n, 1), self.bos_id, dtype=torch.long, device=batch.input_ids.device)
            return ids, torch.ones_like(ids, dtype=torch.bool)
        return batch.input_ids, batch.attention_mask.bool()

    def _context(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """What the decoder cross-attends: (B, K, D) states and (B, K) bool mask."""
        image = self.model.vision_model(pixel_values=batch.pixel_values).last_hidden_state  # (B, N, Dv)
        image_mask = torch.ones(image.shape[:2], dtype=torch.long, device=image.device)  # (B, N)
        if self.task == "caption":
            return image, image_mask.bool()
        question = self.model.text_encoder(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask.long(),
            encoder_hidden_states=image,
            encoder_attention_mask=image_mask,
        ).last_hidden_state  # (B, L, Dt)
        return question, batch.attention_mask.bool()

    def forward(self, batch: Batch, capture: Any = None) -> ModelOutput:
        """Teacher-forced logits (B, T, V) aligned with ``batch.labels``, weighted CE loss, requested maps."""
        if batch.labels is None:
            raise ConfigError("BLIP forward needs batch.labels: collate examples that have targets")
        labels = batch.labels  # (R, T); R = B unless several targets per example
        owner = batch.label_owner  # (R,) or None
        target_mask = labels != -100  # (R, T)
        prefix_ids, prefix_mask = self._prefix(batch, labels.shape[0])  # (R, P)
        inputs = labels[:, :-1].masked_fill(~target_mask[:, :-1], self.pad_id)  # (R, T-1)
        dec_ids = torch.cat([prefix_ids, inputs], 1)  # (R, P+T-1)
        dec_keys = torch.cat([prefix_mask, target_mask[:, :-1]], 1)  # (R, P+T-1) real tokens
        dec_queries = torch.cat([prefix_mask, target_mask[:, 1:]], 1)  # (R, P+T-1) positions that predict one
        if capture is None:
            context = contextlib.nullcontext(None)
        else:
            from amad.capture import capture_attention

            context = capture_attention(self.model, capture)
        with context as maps:
            states, states_mask = self._context(batch)  # (B, K, D), (B, K)
            if owner is not None:  # one copy of the question states per answer, as blip_vqa.py tiles them
                states, states_mask = states[owner], states_mask[owner]  # (R, K, D), (R, K)
            scores = self.model.text_decoder(
                input_ids=dec_ids,
                attention_mask=dec_keys.long(),
                encoder_hidden_states=states,
                encoder_attention_mask=states_mask.long(),
                use_cache=False,
            ).logits  # (R, P+T-1, V)
        logits = scores[:, prefix_ids.shape[1] - 1 :]  # (R, T, V)
        examples = None if owner is None else len(batch)  # several answers: sum per question, mean over questions
        loss = weighted_token_loss(logits, labels, batch.label_weights, self.label_smoothing, examples)
        maps = maps if maps is not None else AttentionMaps()
        if capture is not None:
            self._fill_masks(maps, capture, batch, dec_queries, dec_keys)
        return ModelOutput(logits=logits, loss=loss, target_mask=target_mask, attentions=maps)

    def _fill_masks(
        self, maps: AttentionMaps, capture: Any, batch: Batch, dec_q: torch.Tensor, dec_k: torch.Tensor
    ) -> None:
        """query_mask / key_mask (B, Q) / (B, K) per requested kind; None (left absent) where every position is valid.

        Image positions (CLS + patches) are never padded, so the vision side gets no mask and the losses skip the
        masking passes over the largest maps.
        """
        question = batch.attention_mask.bool()  # (B, L)
        if self.task == "vqa":
            owner = batch.label_owner
            masks = {
                "text_self": (question, question),
                "text_cross": (question, None),  # keys: image positions
                "answer_self": (dec_q, dec_k),  # (R, T') each
                "answer_cross": (dec_q, question if owner is None else question[owner]),  # keys: (R, L)
            }
        else:
            masks = {"text_self": (dec_q, dec_k), "text_cross": (dec_q, None)}  # vision_self: no mask at all
        for kind in capture.layers:
            query, key = masks.get(kind, (None, None))
            if query is not None:
                maps.query_mask[kind] = query
            if key is not None:
                maps.key_mask[kind] = key

    @torch.no_grad()
    def generate(
        self,
        batch: Batch,
        num_beams: int = 1,
        max_new_tokens: int | None = None,
        *,
        min_length: int | None = None,
        max_length: int | None = None,
    ) -> list[str]:
        """Greedy (num_beams=1) or beam-search answers/captions, one string per example (prompt removed).

        ``max_length`` / ``min_length`` count the decoder prefix ([DEC] + prompt), as BLIP's caption_coco.yaml
        (max_length 20, min_length 5 with the 4-token "a picture of " prefix).
        """
        states, states_mask = self._context(batch)
        prefix_ids, prefix_mask = self._prefix(batch)
        out = self.model.text_decoder.generate(
            input_ids=prefix_ids,
            attention_mask=prefix_mask.long(),
            encoder_hidden_states=states,
            encoder_attention_mask=states_mask.long(),
            eos_token_id=self.sep_id,
            pad_token_id=self.pad_id,
            num_beams=num_beams,
            **generation_lengths(self.max_target_length, max_new_tokens, min_length, max_length),
            do_sample=False,
        )  # (B, P + new)
        new = out[:, prefix_ids.shape[1] :]  # (B, new)
        return [s.strip() for s in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    @torch.no_grad()
    def rank_answers(self, batch: Batch, answers: Sequence[str], k: int, chunk: int = 256) -> list[str]:
        """BLIP's rank inference for VQA: the answer in ``answers`` with the highest log-likelihood, per question.

        As in BLIP: the probability of each candidate's first token picks the ``k`` best candidates, then those are
        rescored by their whole sequence (answer tokens + sep) log-likelihood, with the question states tiled k times.
        The score is the plain log-likelihood; BLIP's code scores with its training loss, label smoothing included.
        """
        top, scores = self.answer_scores(batch, answers, k, chunk)  # (B, k), (B, k)
        best = top.gather(1, scores.argmax(1, keepdim=True))[:, 0]  # (B,)
        return [answers[int(i)] for i in best]

    @torch.no_grad()
    def answer_scores(
        self, batch: Batch, answers: Sequence[str], k: int, chunk: int = 256
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The k candidates per question with the likeliest first token, and their sequence log-likelihoods.

        Returns (B, k) indices into ``answers`` and (B, k) log p(answer tokens + sep | image, question). The decoder
        runs on at most ``chunk`` candidate sequences at once, which bounds the (rows, T, V) logits.
        """
        if self.task != "vqa":
            raise ConfigError("rank inference is for VQA models: captions are generated")
        if not answers:
            raise ConfigError("rank inference needs a non-empty answer list: check the VQA training split")
        device = batch.input_ids.device
        targets = self._encode_answers(tuple(answers)).to(device)  # (A, T) answer ids + sep, -100 after
        states, states_mask = self._context(batch)  # (B, L, D), (B, L)
        b, k = states.shape[0], min(k, len(answers))
        bos = torch.full((b * k, 1), self.bos_id, dtype=torch.long, device=device)  # (B*k, 1)
        first = self._decode(bos[:b], states, states_mask)[:, -1].log_softmax(-1)  # (B, 1, V) -> (B, V)
        top = first[:, targets[:, 0]].topk(k, dim=1).indices  # (B, A) -> (B, k)
        flat = top.reshape(-1)  # (B*k,) candidate of each row; row r belongs to question r // k
        scores = torch.empty(b * k, device=device)
        for start in range(0, b * k, chunk):
            rows = torch.arange(start, min(start + chunk, b * k), device=device)  # (R,)
            labels = targets[flat[rows]]  # (R, T), -100 after sep
            inputs = torch.cat([bos[rows], labels[:, :-1]], 1)  # [bos] + answer, as in training: (R, T)
            inputs = inputs.masked_fill(inputs < 0, self.pad_id)
            owner = rows // k  # (R,)
            logp = self._decode(inputs, states[owner], states_mask[owner]).log_softmax(-1)  # (R, T, V)
            token = logp.gather(-1, labels.clamp_min(0)[..., None])[..., 0]  # (R, T)
            scores[rows] = (token * (labels >= 0)).sum(1)  # (R,)
        return top, scores.view(b, k)

    def _encode_answers(self, answers: tuple[str, ...]) -> torch.Tensor:
        """(A, T) label ids of each answer (as ``collate`` builds them), tokenised once per answer list."""
        if self._answer_targets is None or self._answer_targets[0] != answers:
            rows = [[*self._ids(a, self.max_target_length - 1), self.sep_id] for a in answers]
            self._answer_targets = (answers, _pad(rows, -100))
        return self._answer_targets[1]

    def _decode(self, ids: torch.Tensor, states: torch.Tensor, states_mask: torch.Tensor) -> torch.Tensor:
        """Decoder logits (R, T, V) for ids (R, T) that cross-attend states (R, L, D) with mask (R, L)."""
        return self.model.text_decoder(
            input_ids=ids,
            attention_mask=(ids != self.pad_id).long(),
            encoder_hidden_states=states,
            encoder_attention_mask=states_mask.long(),
            use_cache=False,
        ).logits

    def attention_layout(self) -> dict[str, tuple[int, int]]:
        """kind -> (layers, heads): vision_self, text_self, text_cross (+ answer_self, answer_cross for VQA)."""
        v, t = self.model.config.vision_config, self.model.config.text_config
        text = (int(t.num_hidden_layers), int(t.num_attention_heads))
        layout = {"vision_self": (int(v.num_hidden_layers), int(v.num_attention_heads)), "text_self": text}
        layout["text_cross"] = text
        if self.task == "vqa":
            layout.update(answer_self=text, answer_cross=text)
        return layout

    # ---- checkpoints --------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str) -> None:
        """Write weights + config, tokenizer and amad_model.json {family, task, size} (written last)."""
        size = dict(self.size, prompt=self.prompt)
        self._save_folder(directory, {"family": self.family, "task": self.task, "size": size})

    @classmethod
    def from_pretrained(cls, directory: str) -> BlipModel:
        """Load our own folder (amad_model.json), or a transformers BLIP folder or hub id (task from its config).

        Raises:
            CheckpointError: another family's checkpoint, missing or mis-shaped weights, no usable tokenizer.
        """
        meta_path = Path(directory, META_FILE)
        meta: dict[str, Any] = {}
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            if meta.get("family") != cls.family:
                raise CheckpointError(
                    f"{directory!r} holds a {meta.get('family')!r} model, not BLIP: load it with family "
                    f"{meta.get('family')!r}"
                )
        hf_model, task = ckpt.load_hf_blip(str(directory), meta.get("task"))
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(directory))
        except (OSError, ValueError, TypeError) as exc:
            raise CheckpointError(
                f"no usable tokenizer in {directory!r} ({type(exc).__name__}): save one with it"
            ) from None
        size = meta.get("size") or ckpt.size_from_config(hf_model.config) | HUB_DEFAULTS
        if len(tokenizer) > hf_model.get_input_embeddings().weight.shape[0]:
            raise CheckpointError(
                f"the tokenizer in {directory!r} has {len(tokenizer)} tokens but the model only "
                f"{hf_model.get_input_embeddings().weight.shape[0]} vocabulary rows: save the matching tokenizer"
            )
        return cls(hf_model, tokenizer, task, size)
