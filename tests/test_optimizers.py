"""Optimizers and schedules against their textbook formulas (recomputed here in plain NumPy)
and against torch.optim; optimizer state saved and restored continues identically.

Conventions (see optimizers.py): weight decay is L2 on weights (``layers.<i>.W``) only, added
to the gradient (``g + lambda W``); AdamW instead shrinks ``W <- W - eta lambda W`` before the
Adam step. Momentum and Nesterov use torch.optim.SGD's form; RMSprop puts eps outside sqrt.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backprop import MLP
from backprop.optimizers import (
    OPTIMIZERS,
    SCHEDULES,
    CosineLR,
    ExponentialLR,
    StepLR,
    get_optimizer,
    get_schedule,
)
from backprop.training import TrainingDiverged

LR, WD, MU, B1, B2, EPS, RHO = 0.05, 0.1, 0.9, 0.8, 0.95, 1e-3, 0.85
SETTINGS = {
    "sgd": {},
    "momentum": {"momentum": MU},
    "nesterov": {"momentum": MU},
    "adam": {"beta1": B1, "beta2": B2, "eps": EPS},
    "adamw": {"beta1": B1, "beta2": B2, "eps": EPS},
    "rmsprop": {"rho": RHO, "eps": EPS},
}


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    params = {"layers.0.W": rng.normal(size=(3, 2)), "layers.0.b": rng.normal(size=2)}
    grads = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(5)]
    return params, grads


TEXTBOOK = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")


def _textbook(name: str, params: dict, grads: list, wd: float) -> list[dict]:
    """The parameters after each update, recomputed from the papers' formulas."""
    if name not in TEXTBOOK:  # (a new optimizer was 'expected' to leave the parameters alone)
        raise KeyError(f"no textbook formula for the optimizer {name!r}: add it to _textbook")
    p = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    out = []
    for t, g_all in enumerate(grads, start=1):
        for k in p:
            g = g_all[k]
            is_w = k.endswith(".W")
            if is_w and name != "adamw":
                g = g + wd * p[k]  # L2: gradient of lambda/2 ||W||^2
            if name == "sgd":  # p <- p - eta g
                p[k] = p[k] - LR * g
            elif name == "momentum":  # v <- mu v + g; p <- p - eta v
                v[k] = MU * v[k] + g
                p[k] = p[k] - LR * v[k]
            elif name == "nesterov":  # v <- mu v + g; p <- p - eta (g + mu v)
                v[k] = MU * v[k] + g
                p[k] = p[k] - LR * (g + MU * v[k])
            elif name in ("adam", "adamw"):  # Kingma & Ba, Algorithm 1
                if name == "adamw" and is_w:  # Loshchilov & Hutter: decoupled decay first
                    p[k] = p[k] - LR * wd * p[k]
                m[k] = B1 * m[k] + (1 - B1) * g
                v[k] = B2 * v[k] + (1 - B2) * g**2
                m_hat = m[k] / (1 - B1**t)
                v_hat = v[k] / (1 - B2**t)
                p[k] = p[k] - LR * m_hat / (np.sqrt(v_hat) + EPS)
            elif name == "rmsprop":  # Tieleman & Hinton: v <- rho v + (1-rho) g^2
                v[k] = RHO * v[k] + (1 - RHO) * g**2
                p[k] = p[k] - LR * g / (np.sqrt(v[k]) + EPS)
        out.append({k: x.copy() for k, x in p.items()})
    return out


def _ours(name: str, params: dict, grads: list, wd: float, n_steps: int = 3) -> list[dict]:
    p = {k: v.copy() for k, v in params.items()}
    opt = get_optimizer(name, lr=LR, weight_decay=wd, **SETTINGS[name])
    out = []
    for g in grads[:n_steps]:
        opt.step(p, g)
        out.append({k: x.copy() for k, x in p.items()})
    return out


def test_all_optimizers_covered():
    assert set(SETTINGS) == set(OPTIMIZERS)


@pytest.mark.parametrize("wd", [0.0, WD])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_first_three_updates_equal_textbook_formula(name, wd):
    params, grads = _problem(1)
    ours = _ours(name, params, grads, wd)
    book = _textbook(name, params, grads[:3], wd)
    for step, (a, b) in enumerate(zip(ours, book, strict=True)):
        for k in a:
            np.testing.assert_allclose(
                a[k], b[k], rtol=1e-12, atol=1e-15, err_msg=f"{k} step {step + 1}"
            )
    # every update moved every parameter
    assert all(not np.allclose(ours[0][k], params[k]) for k in params)


def test_weight_decay_touches_weights_only():
    params, grads = _problem(2)
    for name in OPTIMIZERS:
        plain = _ours(name, params, grads, 0.0)[-1]
        decayed = _ours(name, params, grads, 0.5)[-1]
        np.testing.assert_array_equal(plain["layers.0.b"], decayed["layers.0.b"])
        assert not np.allclose(plain["layers.0.W"], decayed["layers.0.W"])


def _torch_optimizer(torch, name: str, W, b, wd: float):
    groups = [{"params": [W], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=LR, foreach=False)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(
            groups, lr=LR, momentum=MU, nesterov=name == "nesterov", foreach=False
        )
    if name == "adam":
        return torch.optim.Adam(groups, lr=LR, betas=(B1, B2), eps=EPS, foreach=False)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=LR, betas=(B1, B2), eps=EPS, foreach=False)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=LR, alpha=RHO, eps=EPS, foreach=False)
    raise KeyError(f"no torch.optim counterpart for {name!r}: add it to _torch_optimizer")


@pytest.mark.parametrize("wd", [0.0, WD])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_updates_match_torch_optim(name, wd):
    torch = pytest.importorskip("torch", reason="torch.optim is the independent reference")
    params, grads = _problem(3)
    ours = _ours(name, params, grads, wd, n_steps=5)
    W = torch.tensor(params["layers.0.W"], requires_grad=True)
    b = torch.tensor(params["layers.0.b"], requires_grad=True)
    opt = _torch_optimizer(torch, name, W, b, wd)
    for step, g in enumerate(grads):
        W.grad = torch.tensor(g["layers.0.W"])
        b.grad = torch.tensor(g["layers.0.b"])
        opt.step()
        np.testing.assert_allclose(ours[step]["layers.0.W"], W.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours[step]["layers.0.b"], b.detach().numpy(), rtol=1e-12)


def test_step_updates_the_model_parameters_in_place():
    model = MLP([2, 3, 1], seed=0)
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(4, 2)), rng.uniform(size=(4, 1))
    live = model.params
    before = model.state_dict()
    _, grads = model.gradients(X, T)
    get_optimizer("adam", lr=0.1).step(model.params, grads)
    after = model.params
    assert all(after[k] is live[k] for k in live)  # the same arrays, updated
    assert all(not np.array_equal(before[k], after[k]) for k in live)


# --------------------------------------------------------------------------------- schedules
def test_schedules_equal_their_formulas():
    base = 0.3
    step, expo, cos = (
        StepLR(step_size=3, gamma=0.5),
        ExponentialLR(gamma=0.9),
        CosineLR(t_max=8, min_lr=0.01),
    )
    for e in range(20):
        assert step(base, e) == pytest.approx(base * 0.5 ** (e // 3), rel=1e-15)
        assert expo(base, e) == pytest.approx(base * 0.9**e, rel=1e-14)
        ec = min(e, 8)
        expected = 0.01 + (base - 0.01) * (1 + math.cos(math.pi * ec / 8)) / 2
        assert cos(base, e) == pytest.approx(expected, rel=1e-14, abs=1e-16)
        assert get_schedule("constant")(base, e) == base
    assert cos(base, 0) == pytest.approx(base) and cos(base, 8) == pytest.approx(0.01)
    assert set(SCHEDULES) == {"constant", "step", "exponential", "cosine"}


def test_schedules_match_torch_lr_scheduler():
    torch = pytest.importorskip("torch", reason="torch's schedulers are the independent reference")
    base = 0.3
    cases = [
        (StepLR(step_size=3, gamma=0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        (ExponentialLR(gamma=0.9), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)),
        (
            CosineLR(t_max=8, min_lr=0.01),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8, eta_min=0.01),
        ),
    ]
    for ours, make in cases:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
        sched = make(opt)
        for e in range(9):  # cosine: torch's is periodic after T_max, ours stays at min_lr
            assert ours(base, e) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
            opt.step()
            sched.step()


def test_optimizer_uses_scheduled_lr_for_its_epoch():
    params, grads = _problem(4)
    opt = get_optimizer("sgd", lr=0.4, schedule=StepLR(step_size=2, gamma=0.25))
    for epoch, lr in [(0, 0.4), (1, 0.4), (2, 0.1), (5, 0.025)]:
        opt.epoch = epoch
        assert opt.lr == pytest.approx(lr)
        p = {k: v.copy() for k, v in params.items()}
        opt.step(p, grads[0])
        np.testing.assert_allclose(
            p["layers.0.b"], params["layers.0.b"] - lr * grads[0]["layers.0.b"]
        )


def test_fit_follows_the_schedule_epoch_by_epoch():
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(16, 2)), rng.uniform(size=(16, 1))
    model = MLP([2, 3, 1], seed=0)
    sched = CosineLR(t_max=4, min_lr=0.0)
    opt = get_optimizer("momentum", lr=0.5, schedule=sched)
    history = model.fit(X, T, optimizer=opt, epochs=6, batch_size=4)
    assert history["lr"] == pytest.approx([sched(0.5, e) for e in range(6)])


def test_a_cosine_schedule_decays_over_the_runs_epochs():
    """get_optimizer(..., schedule="cosine") decayed over a fixed 10 epochs: fit(epochs=30)
    trained epochs 11-30 at a rate of 0, the loss flat, with nothing said. Its length is now
    fit's epochs; steps taken without fit are told to give it."""
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(16, 2)), rng.uniform(size=(16, 1))
    opt = get_optimizer("adam", lr=0.01, schedule="cosine")
    history = MLP([2, 3, 1], seed=0).fit(X, T, optimizer=opt, epochs=30, batch_size=4)
    lrs = history["lr"]
    assert lrs == pytest.approx([0.005 * (1 + math.cos(math.pi * e / 30)) for e in range(30)])
    assert min(lrs) > 0 and lrs == sorted(lrs, reverse=True)
    # each fit decays over its own epochs: the schedule is not changed for good by one
    # (a first fit's length was written into it: a second fit of 6 epochs after one of 3, or
    # after a refused call, trained at 0; fit(epochs=0) left a t_max that divides by zero)
    opt = get_optimizer("sgd", lr=0.5, schedule="cosine")
    with pytest.raises(ValueError, match="columns"):
        MLP([2, 3, 1], seed=0).fit(X[:, :1], T, optimizer=opt, epochs=5)
    for epochs in (0, 3, 6):
        model = MLP([2, 3, 1], seed=0)
        history = model.fit(X, T, optimizer=opt, epochs=epochs, batch_size=4)
        assert history["lr"] == pytest.approx(
            [0.25 * (1 + math.cos(math.pi * e / epochs)) for e in range(epochs)]
        )
    assert opt.schedule.t_max is None and opt.schedule.to_dict() == {
        "name": "cosine", "t_max": None, "min_lr": 0.0
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"length t_max .* give get_schedule\('cosine', t_max="):
        _ = get_optimizer("adam", schedule="cosine").lr


def test_a_callback_changes_the_rate_through_base_lr():
    """optimizer.lr = x raised Python's "property 'lr' of 'Adam' object has no setter", and
    base_lr, the way to do it, was nowhere said: the error now names it."""
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(16, 2)), rng.uniform(size=(16, 1))
    opt = get_optimizer("adam", lr=0.01)
    with pytest.raises(AttributeError, match="set optimizer.base_lr to change the rate"):
        opt.lr = 0.1

    def halve_after_two(state) -> None:
        if state.epoch == 2:
            state.optimizer.base_lr /= 2

    history = MLP([2, 3, 1], seed=0).fit(X, T, optimizer=opt, epochs=4, callbacks=[halve_after_two])
    assert history["lr"] == [0.01, 0.01, 0.005, 0.005]


# ----------------------------------------------------------------------- state round trip
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dict_round_trip_continues_identically(name):
    params, grads = _problem(5)
    kw = {"lr": LR, "weight_decay": WD, "schedule": ExponentialLR(0.5), **SETTINGS[name]}
    a = get_optimizer(name, **kw)
    pa = {k: v.copy() for k, v in params.items()}
    a.epoch = 1
    for g in grads[:2]:
        a.step(pa, g)
    saved = a.state_dict()
    assert saved["name"] == name and saved["t"] == 2 and saved["epoch"] == 1
    b = get_optimizer(name, **kw)
    b.load_state_dict(saved)
    pb = {k: v.copy() for k, v in pa.items()}
    for g in grads[2:]:
        a.step(pa, g)
        b.step(pb, g)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])
    # the saved state is a copy: continuing `a` did not change it
    later = a.state_dict()
    assert later["t"] == 5 and saved["t"] == 2
    for s in saved["slots"]:
        assert not np.array_equal(saved["slots"][s], later["slots"][s])


def test_state_dict_of_another_optimizer_is_refused():
    params, grads = _problem(6)
    adam = get_optimizer("adam", lr=0.1)
    adam.step({k: v.copy() for k, v in params.items()}, grads[0])
    with pytest.raises(ValueError, match="optimizer state is for 'adam', not 'rmsprop'"):
        get_optimizer("rmsprop", lr=0.1).load_state_dict(adam.state_dict())


def test_settings_beside_an_optimizer_object_are_refused():
    """fit(optimizer=SGD(lr=0.1), lr=5.0) trained at 0.1: the lr was dropped without a word."""
    sgd = get_optimizer("sgd", lr=0.1)
    assert get_optimizer(sgd) is sgd
    with pytest.raises(ValueError, match=r"^lr=5.0 given with the optimizer object SGD, which"):
        get_optimizer(sgd, lr=5.0)
    model = MLP([2, 3, 2], seed=0)
    with pytest.raises(ValueError, match="lr=5.0 given with the optimizer object SGD"):
        model.fit(np.zeros((4, 2)), np.array([0, 1, 0, 1]), optimizer=sgd, lr=5.0, epochs=1)


# ------------------------------------------------------------------------------ defaults
# Every optimizer's defaults, from its source: the base learning rate 0.1 of the tutorial's
# SGD; Kingma & Ba's Algorithm 1 (alpha 0.001, beta1 0.9, beta2 0.999, eps 1e-8; torch.optim's
# Adam defaults too); AdamW's weight_decay 0.01 (its docstring; torch.optim.AdamW's default);
# Tieleman & Hinton's rho 0.9 (lecture 6e: "MeanSquare = 0.9 MeanSquare + 0.1 g^2"); eps
# 1e-8 and docs/sklearn.md's beta_1, beta_2, epsilon = 0.9, 0.999, 1e-8.
DEFAULTS = {
    "sgd": {"lr": 0.1, "weight_decay": 0.0},
    "momentum": {"lr": 0.1, "weight_decay": 0.0, "momentum": 0.9},
    "nesterov": {"lr": 0.1, "weight_decay": 0.0, "momentum": 0.9},
    "adam": {"lr": 1e-3, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "adamw": {"lr": 1e-3, "weight_decay": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "rmsprop": {"lr": 1e-3, "weight_decay": 0.0, "rho": 0.9, "eps": 1e-8},
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizers_defaults_are_the_documented_ones(name):
    assert get_optimizer(name).hyperparameters() == DEFAULTS[name]
    declared = {k: v for k, v in OPTIMIZERS[name].settings().items() if k != "schedule"}
    assert declared == DEFAULTS[name]  # what --help and the settings check offer


def _torch_defaults(torch, name: str, W, b):
    # where torch.optim's defaults are the documented ones (Adam, AdamW), none is given; the
    # others' documented values are spelt out (torch's RMSprop alpha is 0.99, its SGD
    # momentum 0, both lr different)
    groups = [{"params": [W]}, {"params": [b], "weight_decay": 0.0}]  # decay on W only
    if name == "adam":
        return torch.optim.Adam(groups, foreach=False)
    if name == "adamw":
        return torch.optim.AdamW(groups, foreach=False)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=1e-3, alpha=0.9, eps=1e-8, foreach=False)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=0.1, foreach=False)
    return torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=name == "nesterov",
                           foreach=False)  # fmt: skip


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_default_optimizers_step_as_torch_with_the_documented_settings(name):
    torch = pytest.importorskip("torch", reason="torch.optim is the independent reference")
    params, grads = _problem(7)
    p = {k: v.copy() for k, v in params.items()}
    ours = get_optimizer(name)
    W = torch.tensor(params["layers.0.W"], requires_grad=True)
    b = torch.tensor(params["layers.0.b"], requires_grad=True)
    ref = _torch_defaults(torch, name, W, b)
    for g in grads[:3]:
        ours.step(p, g)
        W.grad, b.grad = torch.tensor(g["layers.0.W"]), torch.tensor(g["layers.0.b"])
        ref.step()
        np.testing.assert_allclose(p["layers.0.W"], W.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(p["layers.0.b"], b.detach().numpy(), rtol=1e-12)


def test_adam_goes_on_after_a_diverged_epoch_as_if_it_had_never_run(same_params):
    """A diverged epoch is undone, weights and optimizer (fit's TrainingDiverged): Adam's
    step count goes back from 12 to 8, and the next steps' bias corrections must use 9, 10...
    as a run that never diverged does. The flat path reads t from a 0-d array it advances
    by one per step; left holding the undone epoch's 12, it went on with 13, 14..."""
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(32, 3)), rng.normal(size=(32, 2))

    def two_good_epochs():
        model, opt = MLP([3, 4, 2], "tanh", "identity", "mse", seed=0), get_optimizer("adam")
        model.fit(X, T, optimizer=opt, epochs=2, batch_size=8)  # 4 steps an epoch: t = 8
        return model, opt

    model, opt = two_good_epochs()
    assert model.flat is not None  # the flat path, which reads t from its array
    with pytest.raises(TrainingDiverged):
        model.fit(X * 1e200, T * 1e200, optimizer=opt, epochs=1, batch_size=8)
    assert opt.t == 8
    fresh, fresh_opt = two_good_epochs()
    for m, o in ((model, opt), (fresh, fresh_opt)):
        m.fit(X, T, optimizer=o, epochs=2, batch_size=8)
    assert same_params(model, fresh)
    assert same_params(opt.state_dict()["slots"], fresh_opt.state_dict()["slots"])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_setting_is_in_the_signature_help_shows(name):
    """help(Adam) showed ``**kw``, hiding weight_decay and schedule (AdamW hid beta1, beta2,
    eps and schedule): every setting is a named parameter."""
    import inspect

    params = inspect.signature(OPTIMIZERS[name]).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())
    assert set(OPTIMIZERS[name].settings()) == set(params)
