"""The syntax check run before a submission is queued."""
import pytest

from datarun.precheck import first_syntax_problem, syntax_problem


def test_a_syntax_error_names_the_file_the_line_and_the_code():
    problem = syntax_problem("estimator.py", b"import numpy\n\ndef get_estimator(:\n    pass\n")

    assert (problem.file, problem.line) == ("estimator.py", 3)
    assert str(problem).startswith("estimator.py, line 3: ")
    assert "def get_estimator(:" in str(problem)
    assert problem.as_details()["line"] == 3


def test_correct_code_and_other_files_pass():
    assert syntax_problem("estimator.py", b"def get_estimator():\n    return 1\n") is None
    assert syntax_problem("external_data.csv", b"a,b\n1,(\n") is None


def test_code_is_read_in_the_encoding_python_would_read_it_in():
    problem = syntax_problem("estimator.py", b"x = '\xff'\n")
    assert problem.line == 1 and "'utf-8' codec can't decode byte 0xff" in problem.message
    latin1 = b"# -*- coding: latin-1 -*-\n# r\xe9gression logistique\nx = 1\n"
    assert syntax_problem("estimator.py", latin1) is None


def test_the_first_failing_file_by_name_is_reported():
    problem = first_syntax_problem({"regressor.py": b"x = (", "classifier.py": b"y = )",
                                    "ok.py": b"pass"})

    assert problem.file == "classifier.py"


def test_the_client_refuses_in_the_servers_words():
    from datarun.client import BadInputError, _precheck

    code = b"x = 1\nif x\n    pass\n"
    with pytest.raises(BadInputError) as refused:
        _precheck({"estimator.py": code, "data.csv": b"("})

    assert refused.value.message == str(syntax_problem("estimator.py", code))
    assert refused.value.details == syntax_problem("estimator.py", code).as_details()
