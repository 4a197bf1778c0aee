"""Conversion scripts: official corpus releases -> Hugging Face datasets (`python -m dataset_scripts.<corpus>`)."""
