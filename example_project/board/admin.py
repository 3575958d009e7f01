from django.contrib import admin

from .models import Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["title", "column", "private", "owner"]
    list_filter = ["column", "private"]
    exclude = ["logux_clocks"]
