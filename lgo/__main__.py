from lgo.cli import app

app(prog_name="lgo")
