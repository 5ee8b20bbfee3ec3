"""A small end-to-end example of the core: build, save, reload, check the HF layout."""

import tempfile

import torch

import minirob


def main() -> None:
    torch.manual_seed(0)
    config = minirob.RobertaConfig.tiny()
    model = minirob.RobertaForMaskedLM(config).eval()
    ids = torch.tensor([[0, 100, 200, 300, 2, 1], [0, 400, 2, 1, 1, 1]])
    mask = (ids != config.pad_token_id).long()
    with torch.no_grad():
        logits = model(ids, attention_mask=mask)
    print(f"tiny RobertaForMaskedLM: {model.num_parameters():,} parameters, logits {tuple(logits.shape)}")
    with tempfile.TemporaryDirectory() as directory:
        model.save_pretrained(directory)
        again = minirob.RobertaForMaskedLM.from_pretrained(directory).eval()
        with torch.no_grad():
            same = torch.equal(again(ids, attention_mask=mask), logits)
    print(f"saved and reloaded in the transformers layout; identical logits: {same}")


if __name__ == "__main__":
    main()
