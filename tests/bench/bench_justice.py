"""Benchmark: CPU time to build and sign a justice transaction for a revoked commitment with 0, 10
and 483 HTLC outputs (483: BOLT 2's max_accepted_htlcs, so the largest commitment a peer can make).

Run: .venv/bin/python tests/bench/bench_justice.py [runs]      (default 7 runs per size)

Setup (not timed): keys from fixed secrets, a revoked commitment of the cheater built with
``lncli.proto.commitment.build_commitment_tx`` (to_local, to_remote and N HTLC outputs, half offered
and half received, none trimmed). Timed, in CPU time (``time.process_time``), median of the runs:

- ``find+sign``: :func:`lncli.proto.justice.build_justice_tx`, everything the watcher does for a
  breach: the commitment keys from the revealed secret, the scripts of to_local and every HTLC,
  finding them among the outputs, the fee, one signature per input;
- ``sign``: :func:`lncli.proto.justice.sweep_revoked_outputs` alone, the outputs already found;
- ``explain``: :func:`lncli.proto.commitment_explain.explain_commitment`, the reading behind
  ``lncli penalty`` (types and claims of every output).

Each line prints the per-input cost (find+sign / inputs). Every justice tx is checked once (not
timed): one input per revoked output, and the first and last signatures verify. There is no other
implementation's figure to compare with, so no named baseline; target: under 1 ms per input.
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lncli.bitcoin.ecdsa import pubkey_from_privkey  # noqa: E402
from lncli.bitcoin.script import p2wpkh_script_for_pubkey  # noqa: E402
from lncli.bitcoin.tx import OutPoint  # noqa: E402
from lncli.proto import commitment_explain as cx  # noqa: E402
from lncli.proto import justice  # noqa: E402
from lncli.proto.commitment import Basepoints, Htlc, build_commitment_tx, derive_commitment_keys, verify_input  # noqa: E402
from lncli.proto.keys import per_commitment_point  # noqa: E402

SIZES = (0, 10, 483)
FUNDING_SAT = 50_000_000
HTLC_SAT = 20_000
FEERATE = 253
DELAY = 144
DEST = p2wpkh_script_for_pubkey(pubkey_from_privkey(b"\x77" * 32))


def _secret(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def _basepoints(side: str) -> Basepoints:
    return Basepoints(*(pubkey_from_privkey(_secret(f"{side} {k}")) for k in ("funding", "revocation", "payment", "delayed", "htlc")))


CHEATER, US = _basepoints("cheater"), _basepoints("us")
REVOCATION_BASEPOINT_SECRET = _secret("us revocation")
PER_COMMITMENT_SECRET = _secret("revealed")


def revoked_commitment(n_htlcs: int):
    htlcs = [
        Htlc(i, HTLC_SAT * 1000, hashlib.sha256(i.to_bytes(4, "big")).digest(), 500_000 + i, offered=i % 2 == 0)
        for i in range(n_htlcs)
    ]
    keys = derive_commitment_keys(per_commitment_point(PER_COMMITMENT_SECRET), CHEATER, US)
    rest_msat = (FUNDING_SAT - n_htlcs * HTLC_SAT) * 1000
    ctx = build_commitment_tx(
        funding_outpoint=OutPoint(b"\x42" * 32, 0), funding_amount_sat=FUNDING_SAT, keys=keys,
        to_local_msat=rest_msat * 7 // 10, to_remote_msat=rest_msat - rest_msat * 7 // 10, htlcs=htlcs,
        feerate_per_kw=FEERATE, dust_limit_sat=546, to_self_delay=DELAY, local_is_opener=True, anchors=False,
        commitment_number=7, obscure_factor=0x2BB038521914,
    )
    assert len(ctx.htlc_outputs) == n_htlcs
    return ctx.tx, keys, htlcs


def build(tx, htlcs):
    return justice.build_justice_tx(
        revoked_commitment_tx=tx, per_commitment_secret=PER_COMMITMENT_SECRET,
        revocation_basepoint_secret=REVOCATION_BASEPOINT_SECRET, broadcaster=CHEATER, countersignatory=US,
        htlcs=htlcs, to_self_delay=DELAY, feerate_per_kw=FEERATE, destination_script=DEST, anchors=False,
    )


def cpu(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def check(jtx, found, keys) -> None:
    assert len(jtx.inputs) == len(found)
    for i in (0, len(found) - 1):
        sig = jtx.inputs[i].witness[0]
        assert verify_input(jtx, i, found[i].witness_script, found[i].amount_sat, keys.revocation_pubkey, sig[:-1])


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    priv = justice.revocation_privkey(PER_COMMITMENT_SECRET, REVOCATION_BASEPOINT_SECRET)
    print(f"justice tx, CPU time, median of {runs} runs (no baseline; target < 1 ms per input)")
    print(f"{'htlcs':>6} {'inputs':>6} {'find+sign ms':>13} {'per input ms':>13} {'sign ms':>9} {'explain ms':>11} {'vsize':>7}")
    for n in SIZES:
        tx, keys, htlcs = revoked_commitment(n)
        found = justice.find_revoked_outputs(tx, keys, htlcs, DELAY, False)
        jtx = build(tx, htlcs)
        check(jtx, found, keys)
        view = cx.CommitmentView(cx.REMOTE, keys, DELAY, False, p2wpkh_script_for_pubkey(US.payment_basepoint), htlcs=htlcs, revoked=True)
        assert sum(o.type != cx.UNKNOWN for o in cx.explain_commitment(tx, view)) == n + 2
        full = cpu(lambda: build(tx, htlcs), runs)
        sign = cpu(lambda: justice.sweep_revoked_outputs(found, priv, feerate_per_kw=FEERATE, destination_script=DEST), runs)
        explain = cpu(lambda: cx.explain_commitment(tx, view), runs)
        k = len(found)
        print(f"{n:>6} {k:>6} {full * 1e3:>13.2f} {full / k * 1e3:>13.3f} {sign * 1e3:>9.2f} {explain * 1e3:>11.2f} {jtx.vsize():>7}")


if __name__ == "__main__":
    main()
