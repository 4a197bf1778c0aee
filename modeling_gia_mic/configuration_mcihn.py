"""MCIHN model configuration."""

from .configuration_multimodal import MultimodalEmotionConfig


class McihnConfig(MultimodalEmotionConfig):
    r"""
    Configuration of an MCIHN model ("A Hybrid Network Model Based on Multi-path Cross-modal Interaction", Zhang et
    al., arXiv 2510.24827): per-modality adversarial autoencoders, a cross-modal gate mechanism (CGMM) with an MMD
    constraint, and a feature fusion module (FFM). The paper's body is not public: this is the package's documented
    reconstruction, and every choice it makes is a field here. The modalities, encoders, widths and task loss are the
    fields of [`MultimodalEmotionConfig`], shared with GIA-MIC and MIAR.

    Args:
        latent_size (`int`, defaults to 128): Width `k` of the autoencoders' latent sequences and codes, of the
            cross-modal gates and of the fusion module.
        prior_std (`float`, defaults to 1.0): Standard deviation of the N(0, prior_std^2 I) prior of the codes.
        num_fusion_layers (`int`, defaults to 1): Transformer layers of the feature fusion module.
        mmd_kernel_bandwidths (`list[float]`, defaults to `[1.0, 2.0, 4.0, 8.0, 16.0]`): Bandwidths `sigma` of the
            Gaussian kernels `exp(-||x - y||^2 / (2 sigma^2 k))` whose mean is the MMD kernel (distances are divided
            by the latent width `k`, so the bandwidths do not depend on it).
        reconstruction_weight (`float`, defaults to 1.0): Weight of the autoencoders' reconstruction loss.
        adversarial_weight (`float`, defaults to 0.1): Weight of the adversarial (prior-matching) loss.
        mmd_weight (`float`, defaults to 0.1): Weight of the CGMM's MMD between modality codes.
        unimodal_weight (`float`, defaults to 0.1): Weight of the per-modality classifiers on the codes.
        Other fields: see [`MultimodalEmotionConfig`].
    """

    model_type = "mcihn"
    latent_size: int = 128
    prior_std: float = 1.0
    num_fusion_layers: int = 1
    mmd_kernel_bandwidths: list[float] | None = None
    reconstruction_weight: float = 1.0
    adversarial_weight: float = 0.1
    mmd_weight: float = 0.1
    unimodal_weight: float = 0.1

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.mmd_kernel_bandwidths is None:
            self.mmd_kernel_bandwidths = [1.0, 2.0, 4.0, 8.0, 16.0]
        if not self.mmd_kernel_bandwidths or min(self.mmd_kernel_bandwidths) <= 0:
            raise ValueError(f"`mmd_kernel_bandwidths` must be positive numbers; got {self.mmd_kernel_bandwidths}.")
        if self.prior_std <= 0:
            raise ValueError(f"`prior_std` must be positive; got {self.prior_std}.")
        self._check_divisible("latent_size", self.latent_size)


__all__ = ["McihnConfig"]
