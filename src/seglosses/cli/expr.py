"""Loss expressions: ``--loss "0.5*ce + dice(include_background=false)"`` → a ``CompoundLoss``.

An expression is a weighted sum of loss terms. A term is a loss name, optionally called with
keyword options; a weight is a non-negative number that multiplies (or divides) a term or a
parenthesised sum::

    ce                                  dice(include_background=false, aggregate=batch)
    focal(gamma=2)                      tversky(alpha=0.3, beta=0.7)
    ce(class_weights=median_frequency)  ce(class_weights=[1, 2, 8])
    0.5*ce + dice                       bce + dice
    2*(ce + dice)                       dice_ce(lambda_dice=2)

Option values are numbers, bare words or strings (``aggregate=batch``), ``true``/``false``,
``none``, or lists of numbers. The text is parsed with :mod:`ast` and only that subset is
accepted; nothing is ever evaluated.

**Targets.** Every term is wrapped in :class:`IndexTargetLoss`, so the trainer always passes
the integer index mask ``(N, *spatial)`` (with ``ignore_index`` labels) and logits
``(N, C, *spatial)``; each term converts the mask to what its mode needs:

- ``mode="multiclass"`` (softmax; the default for C >= 2): the index mask as it is.
- ``mode="multilabel"`` (one sigmoid per class; the default for C >= 2 when the expression has
  a ``bce`` term, so ``bce + dice`` is the usual BCE-Dice): the one-hot ``(N, C, *spatial)``
  of the mask, every channel of an ignored pixel holding the ignore label.
- ``mode="binary"`` (one sigmoid; always for C = 1): the mask with labels {0, 1} gets its
  channel axis, ``(N, 1, *spatial)``.

Predictions are ``logits.argmax(1)`` for C >= 2 (the argmax of the sigmoids is the same) and
``logits[:, 0] > 0`` for C = 1. A dense target with the logits' shape is passed through as is.
"""

from __future__ import annotations

import ast
import inspect
import keyword
import math
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from .._spec import MULTICLASS_STRATEGIES, check_ignore_index, fail
from ..torch import (
    BCELoss,
    CompoundLoss,
    CrossEntropyLoss,
    DiceCELoss,
    DiceLoss,
    FocalLoss,
    JaccardLoss,
    TverskyLoss,
)

__all__ = ["LOSS_NAMES", "IndexTargetLoss", "Term", "describe_loss", "parse_loss",
           "parse_terms"]

_MAX_LENGTH = 2000
# Options fixed by the command: the trainer passes logits with classes on axis 1, one
# ignore_index for every term, and needs scalar terms.
_FIXED = ("class_dim", "from_logits", "validate", "ignore_index", "reduction")


@dataclass(frozen=True)
class _Loss:
    module: type
    title: str
    defaults: dict = field(default_factory=dict)

    @property
    def options(self) -> tuple[str, ...]:
        parameters = inspect.signature(self.module.__init__).parameters.values()
        return tuple(p.name for p in parameters
                     if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _FIXED)


_LOSSES = {
    "ce": _Loss(CrossEntropyLoss, "cross-entropy"),
    "cross_entropy": _Loss(CrossEntropyLoss, "cross-entropy"),
    "bce": _Loss(BCELoss, "binary cross-entropy"),
    "focal": _Loss(FocalLoss, "focal loss"),
    "dice": _Loss(DiceLoss, "Dice"),
    "jaccard": _Loss(JaccardLoss, "Jaccard (soft IoU)"),
    "iou": _Loss(JaccardLoss, "soft IoU (Jaccard)"),
    "tversky": _Loss(TverskyLoss, "Tversky", {"alpha": 0.3, "beta": 0.7}),
    "focal_tversky": _Loss(TverskyLoss, "focal-Tversky", {"alpha": 0.3, "beta": 0.7,
                                                          "gamma": 0.75}),
    "dice_ce": _Loss(DiceCELoss, "Dice + cross-entropy"),
}
LOSS_NAMES = tuple(_LOSSES)
_SIGMOID_ONLY = ("bce",)


@dataclass(frozen=True)
class Term:
    """One parsed term: the loss name as written, its weight and its written options."""

    name: str
    weight: float
    options: dict
    source: str

    @property
    def settings(self) -> dict:
        """The options the loss is built with: the name's defaults, then the written ones."""
        return {**_LOSSES[self.name].defaults, **self.options}


# --------------------------------------------------------------------------------------------
# Parsing (syntax only)


_KEYWORD_VALUE = re.compile(
    r"(=\s*)(" + "|".join(k for k in keyword.kwlist if k not in ("True", "False", "None"))
    + r")\b(?!\s*[(=])")


def _quote_keyword_values(expression: str) -> str:
    """``aggregate=global``: a bare option value that is a Python keyword becomes a string."""
    return _KEYWORD_VALUE.sub(lambda m: f'{m.group(1)}"{m.group(2)}"', expression)


def parse_terms(expression: str, *, function: str = "parse_terms") -> list[Term]:
    """The terms of an expression, in order, with their weights; checks names and options.

    >>> [(t.name, t.weight, t.options) for t in parse_terms("0.5*ce + dice(smooth=0)")]
    [('ce', 0.5, {}), ('dice', 1.0, {'smooth': 0})]
    """
    if not isinstance(expression, str):
        raise fail(function, "expression", "be a string such as '0.5*ce+dice'",
                   type(expression).__name__, error=TypeError)
    if not expression.strip() or len(expression) > _MAX_LENGTH:
        raise fail(function, "expression", f"be a non-empty loss expression of at most "
                   f"{_MAX_LENGTH} characters, such as '0.5*ce+dice'",
                   repr(expression[:60]))
    try:
        tree = ast.parse(_quote_keyword_values(expression.strip()), mode="eval")
    except SyntaxError as error:
        raise fail(function, "expression", "be a weighted sum of losses such as "
                   "'0.5*ce + dice(include_background=false)'", repr(expression),
                   f"Syntax error at column {error.offset}: {error.msg}.") from None
    parser = _Parser(function, expression.strip())
    terms = [parser.term(weight, node) for weight, node in parser.linear(tree.body)]
    return terms


class _Parser:
    def __init__(self, function: str, text: str):
        self.function, self.text = function, text

    def error(self, node, expectation: str, hint: str = "") -> Exception:
        segment = ast.get_source_segment(self.text, node) or self.text
        return fail(self.function, "expression", expectation, repr(segment), hint)

    def number(self, node) -> float | None:
        """The value of a constant numeric sub-expression, or None if ``node`` is not one."""
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and \
                not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self.number(node.operand)
            return None if inner is None else (-inner if isinstance(node.op, ast.USub)
                                               else inner)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
            left, right = self.number(node.left), self.number(node.right)
            if left is not None and right is not None:
                if isinstance(node.op, ast.Div) and right == 0:
                    raise self.error(node, "not divide by zero")
                return left * right if isinstance(node.op, ast.Mult) else left / right
        return None

    def linear(self, node) -> list[tuple[float, ast.expr]]:
        """``node`` as ``[(weight, term node), ...]``."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.linear(node.left) + self.linear(node.right)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
            left, right = self.number(node.left), self.number(node.right)
            if isinstance(node.op, ast.Mult) and left is not None and right is None:
                return [(left * w, t) for w, t in self.linear(node.right)]
            if right is not None and left is None:
                if isinstance(node.op, ast.Div) and right == 0:
                    raise self.error(node, "not divide by zero")
                factor = right if isinstance(node.op, ast.Mult) else 1.0 / right
                return [(factor * w, t) for w, t in self.linear(node.left)]
            raise self.error(node, "multiply or divide a loss by a number (e.g. '0.5*ce'); "
                             "two losses can only be added")
        if isinstance(node, (ast.Name, ast.Call)):
            return [(1.0, node)]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
            raise self.error(node, "add losses, not subtract them (a negative weight would "
                             "maximise a loss)")
        if self.number(node) is not None:
            raise self.error(node, "contain a loss, not only a number",
                             "Loss names: " + ", ".join(LOSS_NAMES) + ".")
        raise self.error(node, "use only loss names, calls with keyword options, numbers, "
                         "'*', '/' and '+'", "Example: '0.5*ce + dice(include_background="
                         "false)'.")

    def term(self, weight: float, node) -> Term:
        source = ast.get_source_segment(self.text, node) or ""
        if not (math.isfinite(weight) and weight >= 0):
            raise self.error(node, "have a finite weight >= 0", f"Its weight is {weight:g}.")
        call = node if isinstance(node, ast.Call) else None
        name_node = call.func if call is not None else node
        if not isinstance(name_node, ast.Name):
            raise self.error(name_node, "name a loss: " + ", ".join(LOSS_NAMES))
        name = name_node.id
        if name not in _LOSSES:
            raise fail(self.function, "expression", "use the losses " + ", ".join(LOSS_NAMES),
                       f"unknown loss {name!r}", "Options go in parentheses, e.g. "
                       "'focal(gamma=2)'.")
        options: dict = {}
        if call is not None:
            if call.args:
                raise self.error(call, "give options by keyword", f"e.g. '{name}(smooth=1)'.")
            allowed = _LOSSES[name].options
            for keyword in call.keywords:
                if keyword.arg is None:
                    raise self.error(call, "give options by keyword, without '**'")
                if keyword.arg not in allowed:
                    hint = ""
                    if keyword.arg == "ignore_index":
                        hint = "The command sets it for every term: pass --ignore-index."
                    elif keyword.arg in _FIXED:
                        hint = f"The command sets {keyword.arg} for every term."
                    raise fail(self.function, f"options of {name!r}",
                               "be among " + ", ".join(allowed), repr(keyword.arg), hint)
                if keyword.arg in options:
                    raise self.error(call, f"give {keyword.arg!r} once")
                options[keyword.arg] = self.value(keyword.value)
        return Term(name, weight, options, source)

    def value(self, node):
        if isinstance(node, ast.Constant) and (node.value is None or
                                               isinstance(node.value, (bool, int, float, str))):
            return node.value
        if isinstance(node, ast.Name):
            lowered = node.id.lower()
            return {"true": True, "false": False, "none": None}.get(lowered, node.id)
        number = self.number(node)
        if number is not None:
            return number
        if isinstance(node, (ast.List, ast.Tuple)):
            values = [self.number(item) for item in node.elts]
            if values and all(v is not None for v in values):
                return values
        raise self.error(node, "give option values as numbers, words, strings, true/false, "
                         "none or lists of numbers")


# --------------------------------------------------------------------------------------------
# Building


class IndexTargetLoss(nn.Module):
    """A loss that takes the index mask ``(N, *spatial)`` whatever its mode (see the module
    docstring): ``"binary"`` adds the channel axis, ``"multilabel"`` one-hot encodes (ignored
    pixels keep the ignore label on every channel), ``"multiclass"`` passes it through. A
    target with the input's number of dimensions is passed through unchanged.

    Attributes:
        loss: the wrapped seglosses module.
        mode: its mode.
    """

    def __init__(self, loss: nn.Module, *, mode: str, ignore_index=None):
        super().__init__()
        self.loss = loss
        self.mode = mode
        self.ignore_index = check_ignore_index("IndexTargetLoss", ignore_index)

    def forward(self, input: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
        if self.mode != "multiclass" and target.ndim == input.ndim - 1 and \
                not target.is_floating_point():
            target = target.unsqueeze(1) if self.mode == "binary" else \
                self._one_hot(target, input.shape[1])
        return self.loss(input, target, **kwargs)

    def _one_hot(self, target: torch.Tensor, num_classes: int) -> torch.Tensor:
        labels = target.long()
        ignored = None
        if self.ignore_index:
            ignored = torch.isin(labels, torch.tensor(self.ignore_index, device=labels.device))
            labels = labels.masked_fill(ignored, 0)
        if not torch.compiler.is_compiling() and labels.numel() and \
                bool(((labels < 0) | (labels >= num_classes)).any()):
            bad = torch.unique(labels[(labels < 0) | (labels >= num_classes)])[:8].tolist()
            raise fail("IndexTargetLoss", "target", f"hold labels in [0, {num_classes}) or an "
                       f"ignore_index {list(self.ignore_index)}", f"values {bad}")
        one_hot = torch.nn.functional.one_hot(labels, num_classes).movedim(-1, 1)
        if ignored is not None:
            one_hot = one_hot.masked_fill(ignored.unsqueeze(1), self.ignore_index[0])
        return one_hot

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def _expression_mode(function: str, terms: list[Term], num_classes: int, mode) -> str:
    allowed = ("binary",) if num_classes == 1 else ("multiclass", "multilabel")
    if mode is None:
        if num_classes == 1:
            return "binary"
        return "multilabel" if any(t.name in _SIGMOID_ONLY for t in terms) else "multiclass"
    if mode not in allowed:
        raise fail(function, "mode", f"be one of {', '.join(map(repr, allowed))} (or None) "
                   f"for num_classes={num_classes}", repr(mode),
                   "One output channel is a binary sigmoid model; C >= 2 channels use "
                   "'multiclass' (softmax) or 'multilabel' (sigmoids on the one-hot mask).")
    return mode


def parse_loss(expression: str, *, num_classes: int, ignore_index=None, mode: str | None = None,
               class_stats=None) -> CompoundLoss:
    """Build the loss of an expression (see the module docstring for the grammar).

    Args:
        expression: e.g. ``"0.5*ce + dice(include_background=false)"``.
        num_classes: C, the model's output channels (1 for a binary sigmoid model).
        ignore_index: an int or a sequence of ints, passed to every term.
        mode: ``None`` (``"binary"`` for C = 1; else ``"multilabel"`` when a ``bce`` term is
            present, ``"multiclass"`` otherwise), ``"multiclass"`` or ``"multilabel"``; a
            term's own ``mode=`` option overrides it for that term.
        class_stats: an optional :class:`~seglosses.ClassStats` of the training set (from
            ``seglosses scan``): a strategy name in a multiclass term's ``class_weights`` then
            gives fixed weights from the dataset's counts instead of each batch's.

    Returns:
        a :class:`~seglosses.torch.CompoundLoss` (also for a single term) whose terms are named
        after the losses as written (``ce``, ``dice``, ``ce_2`` for a repeat) and are
        :class:`IndexTargetLoss` modules; call it as ``loss(logits, index_mask)``. It also
        carries ``loss.expression`` and ``loss.mode`` (the expression-wide mode).

    Raises:
        ValueError: an invalid expression, unknown loss or option (the message lists the valid
        ones), or an option value the loss refuses.

    >>> loss = parse_loss("0.5*ce + dice + 0.1*dice(aggregate=batch)", num_classes=3)
    >>> loss.weights
    {'ce': 0.5, 'dice': 1.0, 'dice_2': 0.1}
    >>> value = loss(torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8)))
    >>> sorted(loss.last_values)
    ['ce', 'dice', 'dice_2']
    """
    function = "parse_loss"
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise fail(function, "num_classes", "be an int >= 1", repr(num_classes))
    ignore = check_ignore_index(function, ignore_index)
    terms = parse_terms(expression, function=function)
    shared_mode = _expression_mode(function, terms, num_classes, mode)
    if class_stats is not None and class_stats.num_classes != num_classes:
        raise fail(function, "class_stats", f"describe {num_classes} classes",
                   f"{class_stats.num_classes} classes")
    built: list[tuple[str, float, nn.Module]] = []
    taken: set[str] = set()
    for term in terms:
        options = term.settings
        term_mode = options.pop("mode", None) or shared_mode
        weights = options.get("class_weights")
        if class_stats is not None and isinstance(weights, str) and \
                weights in MULTICLASS_STRATEGIES and term_mode == "multiclass":
            beta = options.get("weight_beta" if _LOSSES[term.name].module is TverskyLoss
                               else "beta", 0.999)
            options["class_weights"] = class_stats.weights(weights, beta=beta).tolist()
        try:
            loss = _LOSSES[term.name].module(mode=term_mode, ignore_index=ignore_index,
                                             **options)
        except (TypeError, ValueError) as error:
            raise fail(function, f"term {term.source!r}", "have valid options", str(error),
                       "Options: " + ", ".join(_LOSSES[term.name].options) + ".") from None
        name, count = term.name, 1
        while name in taken:
            count += 1
            name = f"{term.name}_{count}"
        taken.add(name)
        built.append((name, term.weight, IndexTargetLoss(loss, mode=term_mode,
                                                         ignore_index=ignore)))
    compound = CompoundLoss(built)
    compound.expression = expression
    compound.mode = shared_mode
    _call_once(function, compound, expression, num_classes)
    return compound


def _call_once(function: str, loss: CompoundLoss, expression: str, num_classes: int) -> None:
    """Call the loss on a 2x2 batch: an option it can only check against C (focal's ``alpha``
    length, BCE's ``pos_weight``) fails here, before any training."""
    logits = torch.zeros(1, num_classes, 2, 2)
    labels = torch.zeros(1, 2, 2, dtype=torch.long)
    try:
        loss(logits, labels)
    except (TypeError, ValueError, RuntimeError) as error:
        raise fail(function, f"expression {expression!r}", f"fit {num_classes} classes",
                   str(error).rstrip(".")) from None


# Options every term shares and the command fixes: not worth repeating in a report.
_SHOWN_SKIP = ("class_dim", "from_logits", "validate", "impl", "reduction")


def expanded_terms(loss: CompoundLoss, *, class_stats_path: str | None = None) -> list[dict]:
    """What each term of a parsed expression computes: its weight, its loss class and every
    option with the value it takes (defaults included), and where its class weights come
    from (``"none"``, ``"fixed"``, ``"--class-stats FILE"`` or ``"each batch: STRATEGY"``).

    >>> terms = expanded_terms(parse_loss("0.5*ce + dice(smooth=0)", num_classes=3))
    >>> [(t["name"], t["weight"], t["loss"], t["options"]["smooth"] if "smooth" in t["options"]
    ...   else None) for t in terms]
    [('ce', 0.5, 'CrossEntropyLoss', None), ('dice', 1.0, 'DiceLoss', 0)]
    """
    terms = []
    for name, module in loss.losses.items():
        inner = getattr(module, "loss", module)
        options = {k: v for k, v in inner.options.items() if k not in _SHOWN_SKIP}
        for buffer, value in inner.named_buffers(recurse=False):
            options[buffer] = [round(float(v), 6) for v in value.tolist()]
        weights = options.get("class_weights")
        if weights is None:
            source = "none"
        elif isinstance(weights, str):
            source = f"each batch: {weights}"
        else:
            source = f"--class-stats {class_stats_path}" if class_stats_path else "fixed"
        terms.append({"name": name, "weight": loss.weights[name], "loss": type(inner).__name__,
                      "options": options, "class_weights_source": source})
    return terms


def describe_loss(expression: str) -> str:
    """A readable description of an expression, with the options each loss is built with.

    >>> describe_loss("0.5*ce + dice(include_background=false)")
    '0.5 × cross-entropy + Dice (include_background=false)'
    >>> describe_loss("focal_tversky")
    'focal-Tversky (alpha=0.3, beta=0.7, gamma=0.75)'
    """
    parts = []
    for term in parse_terms(expression, function="describe_loss"):
        text = _LOSSES[term.name].title
        settings = term.settings
        if settings:
            text += " (" + ", ".join(f"{k}={_show(v)}" for k, v in settings.items()) + ")"
        parts.append(text if term.weight == 1 else f"{term.weight:g} × {text}")
    return " + ".join(parts)


def _show(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:g}" for v in value) + "]"
    return str(value)
