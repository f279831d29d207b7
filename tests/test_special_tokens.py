"""Special ids: BOS / EOS / EOD around documents, and where they come from."""

from xlstm_data.special_tokens import special_token_ids


def test_eos_and_eod_are_appended_once_when_equal():
    class Tok:
        bos_id, eos_id = 1, 2

    assert special_token_ids(
        tokenizer=Tok(), add_bos=True, add_eos=True, add_eod=True, eod_token_id=2
    ) == (1, (2,))
    assert special_token_ids(
        tokenizer=Tok(), add_bos=False, add_eos=True, add_eod=True, eod_token_id=7
    ) == (None, (2, 7))
