"""The xlstm-data command."""

import json

from xlstm_data.sources.token_cache_files import CacheMetadata
from xlstm_data.tools.cli import main


def test_prepare_and_merge_commands(tmp_path, documents, sp_model, capsys):
    for name, texts in (("a", documents[:30]), ("b", documents[30:50])):
        (tmp_path / f"{name}.txt").write_text("\n".join(texts))
        main(["prepare", str(tmp_path / f"{name}.txt"), "--format", "lines", "-o",
              str(tmp_path / name), "--tokenizer", str(sp_model), "--quiet"])  # fmt: skip
    main(["merge", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "ab"),
          "--equalize", "--quiet"])  # fmt: skip
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["documents"] for r in reports] == [30, 20, 40]
    assert CacheMetadata.read(tmp_path / "ab").source["equalize"]
