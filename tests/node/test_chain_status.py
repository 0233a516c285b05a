"""lncli.node.chain_status: the backend's info and the wallet's balance, as chain-status prints them."""

from __future__ import annotations

from lncli.config import Config
from lncli.node.chain_status import chain_status
from tests.node.env import FakeEnv

KEYS = ["chain", "blocks", "headers", "verification_progress", "difficulty", "best_block_hash",
        "mempool_size", "backend", "version", "location"]


def test_chain_status_without_and_with_a_wallet(tmp_path):
    from lncli.wallet.wallet import open_wallet

    env = FakeEnv(tmp_path / "dd", Config({"chaindir": [str(tmp_path / "chain")]}, None))
    st = chain_status(env)
    assert list(st.to_json()) == KEYS
    assert st.wallet_balance is None and st.info.backend == "embedded" and st.info.blocks == 0
    assert not (env.netdir / "wallet.sqlite3").exists()  # never creates a wallet
    open_wallet(env, None).close()
    j = chain_status(env).to_json()
    assert list(j) == KEYS + ["wallet_balance"] and j["wallet_balance"]["total_sat"] == 0
