"""Custom static checks for infra/ that checkov does not cover (issue 4).

`parse` turns Bicep files into pycep-parser's JSON (it needs the checkov venv, where pycep-parser is
installed as checkov's dependency); `rules` applies the checks to that JSON in plain Python, so the
tests can run the rules in the main venv on JSON produced by a subprocess. `package` computes the
file list `azd deploy` uploads (`.funcignore`), in the main venv.
"""
