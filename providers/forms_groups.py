"""Forms of the routing group pages. They parse what a person typed; services.group_save and
services.router_settings_update check and write, and their errors are put back next to the
part of the form they concern."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import ErrorDict
from django.http import QueryDict

from . import services
from .forms import model_limits, put_service_errors
from .models import Deployment, Provider, RouterSettings, RoutingGroup, RoutingStrategy
from .validators import model_id_attrs, name_attrs, validate_group_name, validate_model_id
from .widgets import SecondsInput

PREFIX = "deployments"
MAX_DEPLOYMENTS = 20
CHOOSE_PROVIDER = "Choose a provider"
# The service numbers deployments as they are saved ("Deployment 2: ..."): that number finds
# the row the message belongs to.
_DEPLOYMENT_NUMBER = re.compile(r"^Deployment (\d+)\b")


class _QuietForm(forms.Form):
    """`quiet`: re-rendered to show one more row (or the suggestions for another provider),
    not submitted; what was typed is kept and nothing is checked yet."""

    def __init__(self, *args: Any, quiet: bool = False, **kwargs: Any) -> None:
        self.quiet = quiet
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    @property
    def errors(self) -> ErrorDict:
        errors = super().errors  # cleaned all the same: the formset reads cleaned_data
        return ErrorDict() if self.quiet else errors


class GroupForm(_QuietForm):
    name = forms.CharField(
        label="Name",
        max_length=63,
        validators=[validate_group_name],
        widget=forms.TextInput(attrs=name_attrs()),
        help_text="Lower-case letters, digits, '-' and '_', e.g. fast. Applications ask for "
        "this name as their model.",
    )
    description = forms.CharField(label="Description", required=False, max_length=200)
    drop_params = forms.BooleanField(
        label=RoutingGroup._meta.get_field("drop_params").verbose_name,
        required=False,
        help_text="When off, a call with a parameter a deployment's provider does not support "
        "is refused with an error naming it. When on, such parameters are left out for that "
        "provider and the call goes ahead.",
    )
    fallbacks = forms.CharField(
        label="Fallback groups",
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, group: RoutingGroup | None = None, **kwargs: Any) -> None:
        self.group = group
        if group is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": group.name,
                "description": group.description,
                "drop_params": group.drop_params,
                "fallbacks": ", ".join(
                    link.fallback.name for link in group.fallback_links.select_related("fallback")
                ),
                "version": group.version,
            }
        super().__init__(*args, **kwargs)
        if group is None:
            del self.fields["version"]
        others = RoutingGroup.objects.exclude(pk=group.pk if group else None)
        names = ", ".join(others.values_list("name", flat=True))
        self.fields["fallbacks"].help_text = (
            "Group names separated by commas, tried in this order when every deployment of "
            "this group fails." + (f" Other groups: {names}." if names else "")
        )

    def clean_fallbacks(self) -> list[str]:
        return [n.strip() for n in self.cleaned_data["fallbacks"].split(",") if n.strip()]


class DeploymentForm(_QuietForm):
    provider = forms.ChoiceField(label="Provider")
    model = forms.CharField(
        label="Model",
        max_length=200,
        validators=[validate_model_id],
        widget=forms.TextInput(attrs=model_id_attrs()),
    )
    weight = forms.IntegerField(label="Weight", initial=1, min_value=1, max_value=1000)
    rpm = forms.IntegerField(label="Requests per minute", required=False, min_value=1)
    tpm = forms.IntegerField(label="Tokens per minute", required=False, min_value=1)
    timeout = forms.FloatField(
        label="Timeout (seconds)",
        required=False,
        widget=SecondsInput(),
        **model_limits(Deployment, "timeout"),
    )

    def __init__(
        self,
        *args: Any,
        providers: list[Provider] | tuple = (),
        refresh_url: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        by_name = {p.name: p for p in providers}
        self.fields["provider"].choices = [
            ("", CHOOSE_PROVIDER),
            *((p.name, p.name if p.enabled else f"{p.name} (disabled)") for p in providers),
        ]
        chosen = by_name.get(self["provider"].value() or "")
        if chosen is not None and chosen.discovered_models:
            self.fields["model"].widget.attrs["list"] = f"models-{chosen.pk}"
            self.fields["model"].help_text = "Suggestions come from the provider's last test."
        if refresh_url:
            # With htmx, choosing a provider re-renders the rows, so that the model
            # suggestions follow the provider; focus stays on the select (same id).
            self.fields["provider"].widget.attrs.update(
                {
                    "hx-post": refresh_url,
                    "hx-trigger": "change",
                    "hx-target": f"#{PREFIX}",
                    "hx-swap": "outerHTML",
                    "hx-vals": '{"_refresh": "1"}',
                }
            )

    def has_changed(self) -> bool:
        # Weight and position come prefilled: a new row counts as filled in only once
        # something else is, so an untouched empty row is skipped, not refused.
        return any(name not in ("weight", "ORDER", "DELETE") for name in self.changed_data)

    def spec(self) -> services.DeploymentSpec:
        data = self.cleaned_data
        return services.DeploymentSpec(
            provider=data["provider"],
            model=data["model"].strip(),
            weight=data["weight"],
            rpm=data["rpm"],
            tpm=data["tpm"],
            timeout=data["timeout"],
        )


class BaseDeploymentFormSet(forms.BaseFormSet):
    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        form.fields["ORDER"].label = "Position"
        if index is not None:
            form.fields["ORDER"].initial = index + 1
        form.fields["DELETE"].label = "Remove this deployment"

    def specs(self) -> list[services.DeploymentSpec]:
        return [form.spec() for form in self.ordered_forms]

    def add_service_errors(self, errors: list[ValidationError]) -> None:
        """Put each "Deployment N: ..." message on the N-th saved row; others above the rows."""
        rows = self.ordered_forms
        for error in errors:
            for message in error.messages:
                match = _DEPLOYMENT_NUMBER.match(message)
                number = int(match.group(1)) if match else 0
                if 1 <= number <= len(rows):
                    rows[number - 1].add_error(None, message)
                else:
                    self.non_form_errors().append(message)


DeploymentFormSet = forms.formset_factory(
    DeploymentForm,
    formset=BaseDeploymentFormSet,
    extra=1,
    can_order=True,
    can_delete=True,
    max_num=MAX_DEPLOYMENTS,
    validate_max=True,
)


def deployment_initial(group: RoutingGroup) -> list[dict[str, Any]]:
    return [
        {
            "provider": d.provider.name,
            "model": d.model,
            "weight": d.weight,
            "rpm": d.rpm,
            "tpm": d.tpm,
            "timeout": d.timeout,
        }
        for d in group.deployments.select_related("provider")
    ]


def with_blank_row(data: QueryDict) -> tuple[QueryDict, bool]:
    """The submitted data plus one empty row ("Add another deployment" without saving)."""
    data = data.copy()
    try:
        total = int(data.get(f"{PREFIX}-TOTAL_FORMS", ""))
    except ValueError:
        return data, False
    if not 0 <= total < MAX_DEPLOYMENTS:
        return data, False
    data[f"{PREFIX}-TOTAL_FORMS"] = str(total + 1)
    # What an empty row shows when first rendered, so that it counts as untouched.
    data[f"{PREFIX}-{total}-weight"] = str(DeploymentForm.base_fields["weight"].initial)
    data[f"{PREFIX}-{total}-ORDER"] = str(total + 1)
    return data, True


def add_group_errors(exc: ValidationError, form: GroupForm, formset: BaseDeploymentFormSet):
    """Errors from services.group_save, next to the part of the form they concern."""
    deployments = getattr(exc, "error_dict", {}).pop("deployments", None)
    if deployments is not None:
        formset.add_service_errors(deployments)
    put_service_errors(form, exc)


class RouterSettingsForm(forms.Form):
    routing_strategy = forms.ChoiceField(
        label="Routing strategy",
        choices=RoutingStrategy.choices,
        help_text="How the router picks one of a group's deployments for each call.",
    )
    num_retries = forms.IntegerField(
        label="Retries",
        min_value=0,
        max_value=10,
        help_text="How often a failed call is retried before the fallback groups are tried.",
    )
    timeout = forms.FloatField(
        label="Timeout (seconds)", widget=SecondsInput(), **model_limits(RouterSettings, "timeout")
    )
    cooldown_time = forms.FloatField(
        label="Cooldown after failures (seconds)",
        widget=SecondsInput(),
        min_value=0,
        max_value=3600,
        help_text="How long a failing deployment is left out.",
    )
    allowed_fails = forms.IntegerField(
        label="Allowed failures",
        min_value=0,
        max_value=100,
        help_text="Failures of a deployment within a minute before it is cooled down.",
    )

    def __init__(self, *args: Any, current: RouterSettings, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {name: getattr(current, name) for name in self.base_fields})
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def add_service_errors(self, exc: ValidationError) -> None:
        put_service_errors(self, exc)
