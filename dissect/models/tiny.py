"""Random-init tiny checkpoints of the transformer families, built offline in a second.

They exercise the real loading code (HF directories, BEATs ``.pt`` files) where the pretrained
weights cannot be downloaded: the tests and ``scripts/validate_hear.sh`` (hearvalidator) use
them. Numbers computed from them mean nothing; shapes, timings and APIs are real.

    python -m dissect.models.tiny ast /tmp/tiny-ast   # hubert wav2vec2 wavlm data2vec_audio
                                                      # whisper ast clap beats
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

# BEATs_iter3's architecture flags with tiny widths (see dissect.models.beats_net)
BEATS_TINY = dict(
    input_patch_size=16, embed_dim=32, conv_bias=False, encoder_layers=2, encoder_embed_dim=64,
    encoder_ffn_embed_dim=128, encoder_attention_heads=4, activation_fn="gelu",
    layer_norm_first=False, deep_norm=True, dropout=0.1, attention_dropout=0.1,
    activation_dropout=0.0, encoder_layerdrop=0.05, dropout_input=0.1, conv_pos=16,
    conv_pos_groups=4, relative_position_embedding=True, num_buckets=32, max_distance=64,
    gru_rel_pos=True, finetuned_model=False,
)


def save_tiny(family: str, path: str | Path, seed: int = 0) -> str:
    """Write a tiny random ``family`` checkpoint to ``path``; returns the path to load from
    (a directory for HF families, the ``.pt`` file for BEATs).

    * ``hubert`` / ``wav2vec2`` / ``wavlm`` / ``data2vec_audio``: the encoder, 32 wide,
      2 layers (20 ms frames as the base models).
    * ``whisper``: WhisperForConditionalGeneration, 32 wide, 2 encoder layers, 80 mels.
    * ``ast``: ASTForAudioClassification, 32 wide, 2 layers, 1024 x 128 fbank input.
    * ``clap``: ClapModel (HTSAT 2 stages, 16 mel bins) + a 1 s ClapFeatureExtractor.
    * ``beats``: BEATs ``{"cfg", "model"}`` checkpoint (:data:`BEATS_TINY`).
    """
    import transformers

    torch.manual_seed(seed)
    path = Path(path)
    if family == "hubert":
        cfg = transformers.HubertConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
            conv_dim=(16,) * 7, feat_extract_norm="layer", num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2)
        transformers.HubertModel(cfg).save_pretrained(path)
    elif family in ("wav2vec2", "wavlm", "data2vec_audio"):
        name = {"wav2vec2": "Wav2Vec2", "wavlm": "WavLM", "data2vec_audio": "Data2VecAudio"}
        cfg = getattr(transformers, f"{name[family]}Config")(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
            conv_dim=(16,) * 7, feat_extract_norm="layer", num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2)
        getattr(transformers, f"{name[family]}Model")(cfg).save_pretrained(path)
    elif family == "whisper":
        cfg = transformers.WhisperConfig(
            vocab_size=120, num_mel_bins=80, d_model=32, encoder_layers=2, decoder_layers=1,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=48,
            decoder_ffn_dim=48, max_source_positions=1500, max_target_positions=32,
            pad_token_id=0, bos_token_id=1, eos_token_id=0, decoder_start_token_id=1)
        transformers.WhisperForConditionalGeneration(cfg).save_pretrained(path)
    elif family == "ast":
        cfg = transformers.ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=48, max_length=1024, num_mel_bins=128)
        transformers.ASTForAudioClassification(cfg).save_pretrained(path)
    elif family == "clap":
        audio = dict(spec_size=64, num_mel_bins=16, patch_embeds_hidden_size=8, depths=[2, 2],
                     num_attention_heads=[2, 2], window_size=4, hidden_size=16,
                     projection_dim=8)
        text = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=16, projection_dim=8, max_position_embeddings=40)
        cfg = transformers.ClapConfig(audio_config=audio, text_config=text, projection_dim=8)
        transformers.ClapModel(cfg).save_pretrained(path)
        transformers.ClapFeatureExtractor(feature_size=16, max_length_s=1).save_pretrained(path)
    elif family == "beats":
        from dissect.models.beats_net import BEATs, BEATsConfig

        path.parent.mkdir(parents=True, exist_ok=True)
        net = BEATs(BEATsConfig.from_dict(BEATS_TINY))
        torch.save({"cfg": dict(BEATS_TINY), "model": net.state_dict()}, path)
    else:
        raise ValueError(f"no tiny checkpoint for {family!r}; choose hubert, wav2vec2, wavlm, "
                         "data2vec_audio, whisper, ast, clap or beats")
    return str(path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m dissect.models.tiny FAMILY PATH")
    print(save_tiny(sys.argv[1], sys.argv[2]))
