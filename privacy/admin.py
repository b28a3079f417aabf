from django.contrib import admin

from privacy import models


@admin.register(models.ConsentDocument)
class ConsentDocumentAdmin(admin.ModelAdmin):
    list_display = ("scope", "version", "sha256", "published_at")
    readonly_fields = ("sha256", "published_at")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(models.ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ("patient", "scope", "granted", "document_version", "created_at")
    list_filter = ("scope", "granted")


@admin.register(models.AccessEvent)
class AccessEventAdmin(ReadOnlyAdmin):
    list_display = (
        "occurred_at",
        "actor",
        "actor_role",
        "patient",
        "action",
        "outcome",
        "status_code",
    )
    list_filter = ("outcome", "actor_role")
