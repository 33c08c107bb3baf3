from django.http import JsonResponse


def healthz(request):
    """Liveness: the process answers. Touches no dependency on purpose."""
    return JsonResponse({"status": "ok"})
