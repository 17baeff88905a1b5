"""Where each model's requests go: a per-model gateway, else the global one, else nowhere."""

from __future__ import annotations

from batch_gateway.processors.settings import GatewaySettings, ProcessorSettings


class Routes:
    def __init__(self, settings: ProcessorSettings) -> None:
        self._global = (
            settings.global_inference_gateway if settings.global_inference_gateway.url else None
        )
        self._by_model = {
            model: gateway for model, gateway in settings.model_gateways.items() if gateway.url
        }

    def gateway_for(self, model: str | None) -> GatewaySettings | None:
        if model is not None and model in self._by_model:
            return self._by_model[model]
        return self._global

    def gateways(self) -> list[GatewaySettings]:
        unique = {gateway.url: gateway for gateway in self._by_model.values()}
        if self._global is not None:
            unique.setdefault(self._global.url, self._global)
        return list(unique.values())
