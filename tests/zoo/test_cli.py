"""`lstmkit generate`: trains on a user's file, reports bits per character, saves, and samples a saved model."""

from lstmkit.cli import main


def test_generate_trains_saves_and_loads(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question. " * 60, encoding="utf-8")
    saved = tmp_path / "lm"
    code = main(["-q", "generate", "--text", str(text), "--minutes", "0.05", "--epochs", "3", "--units", "16",
                 "--steps", "20", "--length", "30", "--save", str(saved)])
    out = capsys.readouterr().out
    assert code == 0
    assert "bits per character" in out and "--- sample (temperature 0.7) ---" in out
    assert (saved / "vocabulary.json").is_file()
    assert main(["-q", "generate", "--load", str(saved), "--length", "12", "--prime", "to be"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("to be")


def test_generate_reports_bad_input(tmp_path, capsys):
    assert main(["-q", "generate", "--text", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read --text" in capsys.readouterr().err
    short = tmp_path / "short.txt"
    short.write_text("abc", encoding="utf-8")
    assert main(["-q", "generate", "--text", str(short)]) == 2
    assert "Give a longer text" in capsys.readouterr().err
    assert main(["-q", "generate", "--load", str(tmp_path)]) == 2
    assert "has no vocabulary.json" in capsys.readouterr().err
