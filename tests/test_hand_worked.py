"""One step of the seed's 2-3-2 network worked by hand (``SEED_EXAMPLE``).

Every number below was computed line by line from the seed's formulas with ``math.exp``
(the derivation is in the comments) and is asserted against both the loop-based reference
(:func:`backprop.reference.seed_step`) and the vectorised engine (:class:`backprop.MLP`).
Indices follow the seed: ``w11`` connects x1 to h1, ``u12`` connects h1 to y2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backprop import MLP
from backprop.optimizers import SGD
from backprop.reference import SEED_EXAMPLE, seed_step

# ---- the numbers of SEED_EXAMPLE ------------------------------------------------------------
# x = (x1, x2) = (0.05, 0.10);  t = (t1, t2) = (0.01, 0.99);  eta = 0.5
# w = [[w11, w12, w13], [w21, w22, w23]] = [[0.15, 0.25, 0.35], [0.20, 0.30, 0.40]]
# b(1) = (0.35, 0.35, 0.35)
# u = [[u11, u12], [u21, u22], [u31, u32]] = [[0.40, 0.50], [0.45, 0.55], [0.50, 0.60]]
# b(2) = (0.60, 0.60)
#
# ---- forward ---------------------------------------------------------------------------------
# a(1)_1 = x1 w11 + x2 w21 + b(1)_1 = 0.05*0.15 + 0.10*0.20 + 0.35 = 0.0075 + 0.02 + 0.35 = 0.3775
# a(1)_2 = x1 w12 + x2 w22 + b(1)_2 = 0.05*0.25 + 0.10*0.30 + 0.35 = 0.0125 + 0.03 + 0.35 = 0.3925
# a(1)_3 = x1 w13 + x2 w23 + b(1)_3 = 0.05*0.35 + 0.10*0.40 + 0.35 = 0.0175 + 0.04 + 0.35 = 0.4075
# h1 = 1 / (1 + exp(-0.3775)) = 1 / (1 + 0.685573201584) = 0.593269992107
# h2 = 1 / (1 + exp(-0.3925)) = 1 / (1 + 0.675366346353) = 0.596884378260
# h3 = 1 / (1 + exp(-0.4075)) = 1 / (1 + 0.665311451398) = 0.600488274527
# a(2)_1 = h1 u11 + h2 u21 + h3 u31 + b(2)_1
#        = 0.593269992107*0.40 + 0.596884378260*0.45 + 0.600488274527*0.50 + 0.60 = 1.406150104323
# a(2)_2 = h1 u12 + h2 u22 + h3 u32 + b(2)_2
#        = 0.593269992107*0.50 + 0.596884378260*0.55 + 0.600488274527*0.60 + 0.60 = 1.585214368813
# y1 = 1 / (1 + exp(-1.406150104323)) = 1 / (1 + 0.245085020957) = 0.803158003806
# y2 = 1 / (1 + exp(-1.585214368813)) = 1 / (1 + 0.204903863410) = 0.829941732587
# L = 1/2 [(y1 - t1)^2 + (y2 - t2)^2] = 1/2 [0.793158003806^2 + (-0.160058267413)^2]
#   = 1/2 [0.629099619... + 0.025618648...] = 0.327359133984
#
# ---- output layer ----------------------------------------------------------------------------
# y1 (1 - y1) = 0.803158003806 * 0.196841996194 = 0.158095224729
# y2 (1 - y2) = 0.829941732587 * 0.170058267413 = 0.141138453097
# delta_1 = (y1 - t1) y1 (1 - y1) =  0.793158003806 * 0.158095224729 =  0.125394492857
# delta_2 = (y2 - t2) y2 (1 - y2) = -0.160058267413 * 0.141138453097 = -0.022590376268
# dL/du11 = delta_1 h1 = 0.125394492857 * 0.593269992107 = 0.0743927897875
# dL/du12 = delta_2 h1 = -0.022590376268 * 0.593269992107 = -0.0134021923503
# u11 <- u11 - eta delta_1 h1 = 0.40 - 0.5 * 0.0743927897875 = 0.362803605106
#
# ---- hidden layer (the seed's worked w11) ----------------------------------------------------
# dL/dh1 = (y1 - t1) y1 (1 - y1) u11 + (y2 - t2) y2 (1 - y2) u12
#        = 0.125394492857 * 0.40 + (-0.022590376268) * 0.50
#        = 0.050157797143 - 0.011295188134 = 0.038862609009
# h1 (1 - h1) = 0.593269992107 * 0.406730007893 = 0.241300708572
# dL/dw11 = [(y1 - t1) y1 (1 - y1) u11 + (y2 - t2) y2 (1 - y2) u12] h1 (1 - h1) x1
#         = 0.038862609009 * 0.241300708572 * 0.05 = 0.000468878754539
# w11 <- w11 - eta dL/dw11 = 0.15 - 0.5 * 0.000468878754539 = 0.149765560623
# delta_hidden_1 = dL/dh1 h1 (1 - h1) = 0.038862609009 * 0.241300708572 = 0.00937757509078
# dL/dw21 = delta_hidden_1 x2 = 0.00937757509078 * 0.10 = 0.000937757509078

HAND = {
    "h": [0.593269992107, 0.596884378260, 0.600488274527],
    "y": [0.803158003806, 0.829941732587],
    "loss": 0.327359133984,
    "delta_out": [0.125394492857, -0.022590376268],
    "dL_dh1": 0.038862609009,
    "grad_u11": 0.0743927897875,
    "grad_u12": -0.0134021923503,
    "grad_w11": 0.000468878754539,
    "grad_w21": 0.000937757509078,
    "delta_hidden_1": 0.00937757509078,
    "u11_new": 0.362803605106,
    "w11_new": 0.149765560623,
}
HAND_TOL = 2e-12  # the hand numbers are rounded to 12 decimal places


def _sig(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a))


def test_hand_arithmetic_is_consistent():
    # Redo the derivation above with math.exp so that a typo in HAND cannot hide.
    ex = SEED_EXAMPLE
    x, t, w, u = ex["x"], ex["t"], ex["w"], ex["u"]
    h1 = _sig(0.05 * 0.15 + 0.10 * 0.20 + 0.35)
    assert h1 == pytest.approx(HAND["h"][0], abs=HAND_TOL)
    h = [_sig(x[0] * w[0][j] + x[1] * w[1][j] + 0.35) for j in range(3)]
    y = [_sig(sum(h[i] * u[i][j] for i in range(3)) + 0.60) for j in range(2)]
    assert y == pytest.approx(HAND["y"], abs=HAND_TOL)
    dw11 = (
        ((y[0] - t[0]) * y[0] * (1 - y[0]) * u[0][0] + (y[1] - t[1]) * y[1] * (1 - y[1]) * u[0][1])
        * h[0]
        * (1 - h[0])
        * x[0]
    )
    assert dw11 == pytest.approx(HAND["grad_w11"], abs=HAND_TOL)


def test_reference_matches_hand_worked_numbers():
    s = seed_step(**SEED_EXAMPLE)
    assert s.a1 == pytest.approx([0.3775, 0.3925, 0.4075], abs=1e-15)
    assert s.h == pytest.approx(HAND["h"], abs=HAND_TOL)
    assert s.y == pytest.approx(HAND["y"], abs=HAND_TOL)
    assert s.loss == pytest.approx(HAND["loss"], abs=HAND_TOL)
    assert s.delta_out == pytest.approx(HAND["delta_out"], abs=HAND_TOL)
    assert s.dL_dh[0] == pytest.approx(HAND["dL_dh1"], abs=HAND_TOL)
    assert s.delta_hidden[0] == pytest.approx(HAND["delta_hidden_1"], abs=HAND_TOL)
    assert s.grad_u[0][0] == pytest.approx(HAND["grad_u11"], abs=HAND_TOL)
    assert s.grad_u[0][1] == pytest.approx(HAND["grad_u12"], abs=HAND_TOL)
    assert s.grad_w[0][0] == pytest.approx(HAND["grad_w11"], abs=HAND_TOL)
    assert s.grad_w[1][0] == pytest.approx(HAND["grad_w21"], abs=HAND_TOL)
    assert s.u_new[0][0] == pytest.approx(HAND["u11_new"], abs=HAND_TOL)
    assert s.w_new[0][0] == pytest.approx(HAND["w11_new"], abs=HAND_TOL)
    # bias gradients are the deltas (input 1)
    assert s.grad_b2 == s.delta_out
    assert s.grad_b1 == s.delta_hidden


def _seed_network() -> MLP:
    ex = SEED_EXAMPLE
    net = MLP([2, 3, 2], activation="sigmoid", output_activation="sigmoid", loss="l2", seed=0)
    net.load_state_dict(
        {
            "layers.0.W": np.array(ex["w"]),
            "layers.0.b": np.array(ex["b1"]),
            "layers.1.W": np.array(ex["u"]),
            "layers.1.b": np.array(ex["b2"]),
        }
    )
    return net


def test_engine_matches_hand_worked_numbers():
    ex = SEED_EXAMPLE
    net = _seed_network()
    X, T = np.array([ex["x"]]), np.array([ex["t"]])
    np.testing.assert_allclose(net.forward(X)[0], HAND["y"], rtol=0, atol=HAND_TOL)
    # the hidden layer alone: a one-layer network with the seed's w and b(1) outputs h
    hidden = MLP([2, 3], activation="sigmoid", output_activation="sigmoid", seed=0)
    hidden.load_state_dict({"layers.0.W": np.array(ex["w"]), "layers.0.b": np.array(ex["b1"])})
    np.testing.assert_allclose(hidden.forward(X)[0], HAND["h"], rtol=0, atol=HAND_TOL)

    loss, grads = net.gradients(X, T)
    assert loss == pytest.approx(HAND["loss"], abs=HAND_TOL)
    # for one sample, dL/db = delta (the seed's delta_j, input 1)
    np.testing.assert_allclose(grads["layers.1.b"], HAND["delta_out"], rtol=0, atol=HAND_TOL)
    assert grads["layers.0.b"][0] == pytest.approx(HAND["delta_hidden_1"], abs=HAND_TOL)
    assert grads["layers.1.W"][0, 0] == pytest.approx(HAND["grad_u11"], abs=HAND_TOL)
    assert grads["layers.1.W"][0, 1] == pytest.approx(HAND["grad_u12"], abs=HAND_TOL)
    assert grads["layers.0.W"][0, 0] == pytest.approx(HAND["grad_w11"], abs=HAND_TOL)
    assert grads["layers.0.W"][1, 0] == pytest.approx(HAND["grad_w21"], abs=HAND_TOL)

    SGD(lr=ex["eta"]).step(net.params, grads)
    assert net.params["layers.1.W"][0, 0] == pytest.approx(HAND["u11_new"], abs=HAND_TOL)
    assert net.params["layers.0.W"][0, 0] == pytest.approx(HAND["w11_new"], abs=HAND_TOL)


def test_engine_and_reference_agree_on_every_number_of_the_example():
    ex = SEED_EXAMPLE
    s = seed_step(**ex)
    net = _seed_network()
    X, T = np.array([ex["x"]]), np.array([ex["t"]])
    loss, grads = net.gradients(X, T)
    assert abs(loss - s.loss) <= 1e-15
    np.testing.assert_allclose(grads["layers.0.W"], s.grad_w, rtol=0, atol=1e-15)
    np.testing.assert_allclose(grads["layers.0.b"], s.grad_b1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(grads["layers.1.W"], s.grad_u, rtol=0, atol=1e-15)
    np.testing.assert_allclose(grads["layers.1.b"], s.grad_b2, rtol=0, atol=1e-15)
    net.train_step(X, T, SGD(lr=ex["eta"]))
    p = net.state_dict()
    np.testing.assert_allclose(p["layers.0.W"], s.w_new, rtol=0, atol=1e-15)
    np.testing.assert_allclose(p["layers.0.b"], s.b1_new, rtol=0, atol=1e-15)
    np.testing.assert_allclose(p["layers.1.W"], s.u_new, rtol=0, atol=1e-15)
    np.testing.assert_allclose(p["layers.1.b"], s.b2_new, rtol=0, atol=1e-15)
