"""HEAR 2021 modules: each ``dissect.hear.modules.<name>`` exposes ``load_model(model_file_path="",
**options)``, ``get_scene_embeddings(audio, model)`` and ``get_timestamp_embeddings(audio,
model)``, so hear-eval-kit and hearvalidator can import it as it is. Every module documents its
``model_file_path`` semantics; ``**options`` are heareval's ``--model-options``.

Single models: :data:`SINGLE`; ensembles: :data:`ENSEMBLES`; :data:`OFFLINE` need no download.
"""

SINGLE = ("crepe_full", "crepe_tiny", "whisper_tiny", "logmel", "hubert_base", "wav2vec2_base",
          "wavlm_base", "data2vec_audio_base", "ast_audioset", "beats_iter3", "clap_htsat",
          "yamnet")
ENSEMBLES = ("gura_avg", "gura_cat", "gura_fusion", "guided")
MODULES = SINGLE + ENSEMBLES
OFFLINE = ("crepe_full", "crepe_tiny", "whisper_tiny", "logmel", "yamnet", "gura_avg",
           "gura_cat", "gura_fusion")
