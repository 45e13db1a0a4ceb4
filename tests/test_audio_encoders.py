"""Tests for clapbook.audio_encoders (chapter 04): CNN14 and HTS-AT.

The published-key tables below were derived by reading and instantiating the published code
(laion_clap 1.1.7 `clap_module/htsat.py`, `clap_module/pann_model.py`; msclap 1.3.4
`models/htsat.py`, `models/audio.py`): each entry is (name, shape) of the published module's
`state_dict()`. clapbook drops only the front-end tensors (`spectrogram_extractor.*`,
`logmel_extractor.*`) and HTS-AT's unused `head.*`.
"""
import pytest
import torch

from clapbook.audio_encoders import (
    CNN14, CNN14_SIZES, HTSAT, HTSAT_SIZES, HTSATConfig, PUBLISHED_EXTRA_KEYS, SwinBlock, audio_encoder_config,
    build_audio_encoder, count_parameters, relative_position_index, shifted_window_mask, spec_to_image,
    strip_published_keys, window_merge, window_partition,
)

# (name, shape) in LAION-CLAP's / msclap 2023's HTSAT-tiny (HTSAT_Swin_Transformer, spec_size 256,
# embed_dim 96, depths [2,2,6,2], heads [4,8,16,32], window 8, 64 mels, 527 classes).
HTSAT_TINY_KEYS = [
    ("bn0.weight", (64,)), ("bn0.bias", (64,)), ("bn0.running_mean", (64,)), ("bn0.running_var", (64,)),
    ("bn0.num_batches_tracked", ()),
    ("patch_embed.proj.weight", (96, 1, 4, 4)), ("patch_embed.proj.bias", (96,)),
    ("patch_embed.norm.weight", (96,)), ("patch_embed.norm.bias", (96,)),
    ("layers.0.blocks.0.norm1.weight", (96,)), ("layers.0.blocks.0.norm1.bias", (96,)),
    ("layers.0.blocks.0.attn.relative_position_bias_table", (225, 4)),
    ("layers.0.blocks.0.attn.relative_position_index", (64, 64)),
    ("layers.0.blocks.0.attn.qkv.weight", (288, 96)), ("layers.0.blocks.0.attn.qkv.bias", (288,)),
    ("layers.0.blocks.0.attn.proj.weight", (96, 96)), ("layers.0.blocks.0.attn.proj.bias", (96,)),
    ("layers.0.blocks.0.norm2.weight", (96,)), ("layers.0.blocks.0.norm2.bias", (96,)),
    ("layers.0.blocks.0.mlp.fc1.weight", (384, 96)), ("layers.0.blocks.0.mlp.fc1.bias", (384,)),
    ("layers.0.blocks.0.mlp.fc2.weight", (96, 384)), ("layers.0.blocks.0.mlp.fc2.bias", (96,)),
    ("layers.0.blocks.1.attn_mask", (64, 64, 64)),
    ("layers.0.downsample.reduction.weight", (192, 384)),
    ("layers.0.downsample.norm.weight", (384,)), ("layers.0.downsample.norm.bias", (384,)),
    ("layers.1.blocks.1.attn_mask", (16, 64, 64)),
    ("layers.1.downsample.reduction.weight", (384, 768)),
    ("layers.2.blocks.5.attn_mask", (4, 64, 64)),
    ("layers.2.blocks.5.attn.qkv.weight", (1152, 384)), ("layers.2.blocks.5.mlp.fc2.weight", (384, 1536)),
    ("layers.2.downsample.reduction.weight", (768, 1536)), ("layers.2.downsample.norm.weight", (1536,)),
    ("layers.3.blocks.1.attn.relative_position_bias_table", (225, 32)),
    ("layers.3.blocks.1.attn.qkv.bias", (2304,)), ("layers.3.blocks.1.mlp.fc1.weight", (3072, 768)),
    ("norm.weight", (768,)), ("norm.bias", (768,)),
    ("tscam_conv.weight", (527, 768, 2, 3)), ("tscam_conv.bias", (527,)),
]
# blocks with a shifted window (and so an `attn_mask` buffer) in HTSAT-tiny; stage 3 (8x8 tokens) has none
HTSAT_TINY_MASKED = {"layers.0.blocks.1", "layers.1.blocks.1", "layers.2.blocks.1", "layers.2.blocks.3", "layers.2.blocks.5"}
# published HTSAT-tiny: 200 state_dict entries and 31,325,143 parameters, of which the STFT/mel
# extractors hold 2 * 513 * 1024 + 513 * 64 = 1,083,456 and `head` 527 * 527 + 527 = 278,256
HTSAT_TINY_ENTRIES, HTSAT_TINY_PARAMS = 200 - 3 - 2, 31_325_143 - 1_083_456 - 278_256

HTSAT_BASE_KEYS = [
    ("patch_embed.proj.weight", (128, 1, 4, 4)),
    ("layers.2.blocks.11.attn_mask", (4, 64, 64)), ("layers.2.blocks.11.attn.relative_position_bias_table", (225, 16)),
    ("layers.2.blocks.11.attn.qkv.weight", (1536, 512)), ("layers.2.blocks.11.mlp.fc1.weight", (2048, 512)),
    ("layers.3.blocks.1.attn.qkv.weight", (3072, 1024)), ("norm.weight", (1024,)),
    ("tscam_conv.weight", (527, 1024, 2, 3)),
]
HTSAT_BASE_ENTRIES, HTSAT_BASE_PARAMS = 287 - 3 - 2, 72_424_535 - 1_083_456 - 278_256

# (name, shape) in PANNs' / LAION-CLAP's / msclap 2022's Cnn14 (64 mels, 527 classes, embedding 2048)
CNN14_KEYS = [
    ("bn0.weight", (64,)), ("bn0.bias", (64,)), ("bn0.running_mean", (64,)), ("bn0.running_var", (64,)),
    ("bn0.num_batches_tracked", ()),
    ("conv_block1.conv1.weight", (64, 1, 3, 3)), ("conv_block1.conv2.weight", (64, 64, 3, 3)),
    ("conv_block1.bn1.weight", (64,)), ("conv_block1.bn1.bias", (64,)), ("conv_block1.bn1.running_mean", (64,)),
    ("conv_block1.bn1.running_var", (64,)), ("conv_block1.bn1.num_batches_tracked", ()),
    ("conv_block1.bn2.weight", (64,)), ("conv_block1.bn2.bias", (64,)),
    ("conv_block2.conv1.weight", (128, 64, 3, 3)), ("conv_block3.conv2.weight", (256, 256, 3, 3)),
    ("conv_block4.bn1.running_mean", (512,)), ("conv_block4.bn1.running_var", (512,)),
    ("conv_block5.conv1.weight", (1024, 512, 3, 3)),
    ("conv_block6.conv1.weight", (2048, 1024, 3, 3)), ("conv_block6.conv2.weight", (2048, 2048, 3, 3)),
    ("conv_block6.bn1.weight", (2048,)), ("conv_block6.bn1.running_var", (2048,)),
    ("conv_block6.bn2.weight", (2048,)), ("conv_block6.bn2.bias", (2048,)),
    ("conv_block6.bn2.running_mean", (2048,)), ("conv_block6.bn2.num_batches_tracked", ()),
    ("fc1.weight", (2048, 2048)), ("fc1.bias", (2048,)),
    ("fc_audioset.weight", (527, 2048)), ("fc_audioset.bias", (527,)),
]
# published Cnn14: 84 entries, 81,837,071 parameters incl. 1,083,456 in the extractors
CNN14_ENTRIES, CNN14_PARAMS = 84 - 3, 81_837_071 - 1_083_456


def _meta(name, size):
    with torch.device("meta"):
        return build_audio_encoder(name, size)


def _check_keys(model, table, entries, params):
    sd = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    for name, shape in table:
        assert name in shapes, f"missing published key {name}"
        assert shapes[name] == shape, f"{name}: clapbook {shapes[name]} vs published {shape}"
    assert len(sd) == entries
    assert count_parameters(model) == params
    assert not any(k.startswith(PUBLISHED_EXTRA_KEYS) for k in sd)
    for k, v in sd.items():                      # integer buffers stay integer (checkpoints store int64)
        if k.endswith(("relative_position_index", "num_batches_tracked")): assert v.dtype == torch.int64, k
    return sd


def test_published_htsat_tiny_keys_and_count():
    sd = _check_keys(_meta("htsat", "published-tiny"), HTSAT_TINY_KEYS, HTSAT_TINY_ENTRIES, HTSAT_TINY_PARAMS)
    assert {k.rsplit(".", 1)[0] for k in sd if k.endswith("attn_mask")} == HTSAT_TINY_MASKED
    assert HTSAT_TINY_PARAMS == 29_963_431


def test_published_htsat_base_keys_and_count():
    _check_keys(_meta("htsat", "published-base"), HTSAT_BASE_KEYS, HTSAT_BASE_ENTRIES, HTSAT_BASE_PARAMS)


def test_published_cnn14_keys_and_count():
    _check_keys(_meta("cnn14", "published"), CNN14_KEYS, CNN14_ENTRIES, CNN14_PARAMS)
    assert CNN14_PARAMS == 80_753_615


def test_published_forward_on_short_input():
    torch.manual_seed(0)
    model = build_audio_encoder("htsat", "published-tiny").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 64, 201) * 10 - 40)
    assert out["embedding"].shape == (1, 768)
    assert out["clipwise_output"].shape == (1, 527)
    assert out["framewise_output"].shape == (1, 1024, 527)
    model = build_audio_encoder("cnn14", "published").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 64, 32) * 10 - 40)
    assert out["embedding"].shape == (1, 2048) and out["clipwise_output"].shape == (1, 527)


@pytest.mark.parametrize("name", ["cnn14", "htsat"])
def test_tiny_shapes_and_variable_frames(name):
    torch.manual_seed(0)
    model = build_audio_encoder(name, "tiny").eval()
    assert model.embedding_dim == 256 and model.n_mels == 64
    for frames in (32, 201, 1001):
        with torch.no_grad():
            out = model(torch.randn(2, 64, frames) * 10 - 40)
        assert out["embedding"].shape == (2, 256)
        assert out["clipwise_output"].shape == (2, 527)
        assert torch.isfinite(out["embedding"]).all()
        assert ((out["clipwise_output"] > 0) & (out["clipwise_output"] < 1)).all()
    if name == "htsat":
        assert out["framewise_output"].shape == (2, HTSAT_SIZES["tiny"].image_frames, 527)


@pytest.mark.parametrize("name", ["cnn14", "htsat"])
def test_eval_is_deterministic_and_batch_independent(name):
    torch.manual_seed(0)
    model = build_audio_encoder(name, "tiny")
    model.train()
    model(torch.randn(4, 64, 201) * 10 - 40)     # move the BatchNorm running stats away from their init
    model.eval()
    clips = torch.randn(3, 64, 201) * 10 - 40
    with torch.no_grad():
        a, b = model(clips)["embedding"], model(clips)["embedding"]
        alone = torch.cat([model(clips[i:i + 1])["embedding"] for i in range(3)])
        mixed = model(torch.cat([clips[:1], torch.randn(2, 64, 201) * 30]))["embedding"][:1]
    assert torch.equal(a, b)
    torch.testing.assert_close(a, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a[:1], mixed, atol=1e-5, rtol=1e-5)


def test_train_mode_batchnorm_uses_the_batch():
    # the reason the test above needs eval mode: in train mode bn0 normalises with batch statistics
    torch.manual_seed(0)
    model = build_audio_encoder("cnn14", "tiny", dropout=0.0).train()
    clips = torch.randn(4, 64, 64) * 10 - 40
    with torch.no_grad():
        full = model(clips)["clipwise_output"][:2]
        part = model(torch.cat([clips[:2], clips[:2] + 20]))["clipwise_output"][:2]
    assert not torch.allclose(full, part)


def test_shifted_window_mask_published_grid():
    # in a published 64x64 grid with 8x8 windows shifted by 4, only the last row/column of windows is split
    big = shifted_window_mask(64, 64, 8, 4)
    split = (big != 0).any(dim=(1, 2)).view(8, 8)
    assert split[-1].all() and split[:, -1].all() and split.sum() == 15


def test_shifted_window_attention_cannot_cross_sub_windows():
    torch.manual_seed(0)
    block = SwinBlock(dim=8, resolution=(8, 8), num_heads=2, window_size=4, shift_size=2).eval()
    x = torch.randn(1, 64, 8)
    bump = torch.randn(8) * 3
    with torch.no_grad():
        ref = block(x)
        def change_at_origin(row, col):
            x2 = x.clone(); x2[0, row * 8 + col] += bump
            return (block(x2)[0, 0] - ref[0, 0]).abs().max().item()
        # after rolling by -2, original tokens (0,0), (0,1), (1,0), (1,1) form one sub-window of the
        # bottom-right window together with nothing else; (7,7), (7,0), (0,7) share that window but not the sub-window
        for row, col in ((7, 7), (7, 0), (0, 7), (6, 6), (5, 5)):
            assert change_at_origin(row, col) < 1e-6, (row, col)
        for row, col in ((0, 1), (1, 0), (1, 1)):
            assert change_at_origin(row, col) > 1e-3, (row, col)
    # without the mask those tokens would attend to each other
    block.attn_mask = None
    with torch.no_grad():
        assert change_at_origin(7, 7) > 1e-3


def test_window_helpers_and_relative_positions():
    x = torch.randn(2, 8, 12, 3)
    assert torch.equal(window_merge(window_partition(x, 4), 4, 8, 12), x)
    assert relative_position_index(2).tolist() == [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]


def test_spec_to_image_fold_order():
    # 256 frames x 64 mels with value = frame index: no interpolation, two chunks of 128 frames
    frames = torch.arange(256.0)[None, None, :, None].expand(1, 1, 256, 64)
    img = spec_to_image(frames, spec_size=128, freq_ratio=2)
    assert img.shape == (1, 1, 128, 128)
    assert torch.equal(img[0, 0, 5], torch.arange(128.0))            # row 5: mel 5 of chunk 0
    assert torch.equal(img[0, 0, 64 + 5], torch.arange(128.0, 256.0))  # row 69: mel 5 of chunk 1
    # fewer frames are stretched bicubically (align_corners=True keeps both ends)
    short = torch.linspace(0, 1, 100)[None, None, :, None].expand(1, 1, 100, 64)
    img = spec_to_image(short, 128, 2)
    assert img[0, 0, 0, 0].item() == pytest.approx(0.0, abs=1e-6)
    assert img[0, 0, 127, 127].item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", ["cnn14", "htsat"])
def test_gradient_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = build_audio_encoder(name, "tiny").train()
    out = model(torch.randn(2, 64, 201) * 10 - 40)
    (out["embedding"].square().mean() + out["clipwise_output"].mean()).backward()
    for k, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {k}"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"zero or non-finite gradient for {k}"


def test_bad_inputs_raise_clear_errors():
    cnn, hts = build_audio_encoder("cnn14", "tiny"), build_audio_encoder("htsat", "tiny")
    with pytest.raises(ValueError, match=r"\(batch, n_mels, frames\)"):
        hts(torch.randn(2, 32000))
    with pytest.raises(ValueError, match="n_mels=64"):
        cnn(torch.randn(2, 80, 100))
    with pytest.raises(ValueError, match="at least 32"):
        cnn(torch.randn(2, 64, 20))
    with pytest.raises(TypeError, match="torch.Tensor"):
        hts([[0.0]])
    with pytest.raises(ValueError, match="name='panns'"):
        build_audio_encoder("panns")
    with pytest.raises(ValueError, match="size='large'"):
        build_audio_encoder("htsat", "large")
    with pytest.raises(ValueError, match="embed_size"):
        build_audio_encoder("htsat", "tiny", embed_size=64)
    with pytest.raises(ValueError, match="multiple of n_mels"):
        HTSATConfig(n_mels=100)


def test_factory_overrides_and_sizes():
    cfg = audio_encoder_config("htsat", "published-base", num_classes=50)
    assert (cfg.embed_dim, cfg.depths, cfg.num_classes) == (128, (2, 2, 12, 2), 50)
    assert HTSAT_SIZES["published-tiny"] == HTSATConfig()
    assert isinstance(build_audio_encoder("CNN14"), CNN14) and isinstance(build_audio_encoder("htsat"), HTSAT)
    assert CNN14_SIZES["published"].channels == (64, 128, 256, 512, 1024, 2048)


def test_strip_published_keys_round_trip():
    torch.manual_seed(0)
    src = build_audio_encoder("cnn14", "tiny").eval()
    ckpt = {"audio_encoder.base." + k: v for k, v in src.state_dict().items()}
    ckpt["audio_encoder.base.spectrogram_extractor.stft.conv_imag.weight"] = torch.zeros(3)
    ckpt["audio_encoder.base.logmel_extractor.melW"] = torch.zeros(3)
    ckpt["audio_encoder.projection.linear1.weight"] = torch.zeros(3)
    ckpt["caption_encoder.base.wte.weight"] = torch.zeros(3)
    dst = build_audio_encoder("cnn14", "tiny").eval()
    dst.load_state_dict(strip_published_keys(ckpt, "audio_encoder.base."), strict=True)
    x = torch.randn(2, 64, 64)
    with torch.no_grad():
        assert torch.equal(dst(x)["embedding"], src(x)["embedding"])


def _hf_to_clapbook(hf_state_dict: dict) -> dict:
    "The name mapping of chapter 04's table (Hugging Face ClapAudioModel -> clapbook HTSAT), for this test only."
    import re
    rules = [(r"^audio_encoder\.batch_norm\.", "bn0."), (r"^audio_encoder\.", ""),
             (r"\.layernorm_before\.", ".norm1."), (r"\.layernorm_after\.", ".norm2."),
             (r"\.attention\.self\.relative_position", ".attn.relative_position"),
             (r"\.attention\.output\.dense\.", ".attn.proj."),
             (r"\.intermediate\.dense\.", ".mlp.fc1."), (r"\.output\.dense\.", ".mlp.fc2.")]
    out = {}
    for key, value in hf_state_dict.items():
        qkv = re.match(r"(.*)\.attention\.self\.(query|key|value)\.(weight|bias)$", key)
        if qkv:
            if qkv.group(2) == "query":
                base, kind = qkv.group(1), qkv.group(3)
                out[re.sub(r"^audio_encoder\.", "", base) + f".attn.qkv.{kind}"] = torch.cat(
                    [hf_state_dict[f"{base}.attention.self.{n}.{kind}"] for n in ("query", "key", "value")])
            continue
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        out[key] = value
    return out


def test_matches_hugging_face_clap_audio_model():
    # reference implementation: transformers' ClapAudioModel (HTSAT-tiny), random weights, offline
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf = transformers.ClapAudioModel(transformers.ClapAudioConfig()).eval()
    with torch.no_grad():
        hf.audio_encoder.batch_norm.running_mean.normal_()
        hf.audio_encoder.batch_norm.running_var.uniform_(0.5, 2.0)
    ours = build_audio_encoder("htsat", "published-tiny").eval()
    result = ours.load_state_dict(_hf_to_clapbook(hf.state_dict()), strict=False)
    assert result.unexpected_keys == []
    # only what HF does not store: the shifted-window masks (computed in its forward) and the class head
    assert {k for k in result.missing_keys if not k.endswith("attn_mask")} == {"tscam_conv.weight", "tscam_conv.bias"}
    assert count_parameters(hf) == count_parameters(ours) - count_parameters(ours.tscam_conv)
    logmel = torch.randn(1, 64, 1001) * 10 - 40
    with torch.no_grad():
        ref = hf(input_features=logmel.transpose(1, 2).unsqueeze(1)).pooler_output   # HF reads (batch, 1, frames, mels)
        got = ours(logmel)["embedding"]
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
