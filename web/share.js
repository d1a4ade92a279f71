// The shared exam's page: its button opens the portal's viewer on the share-scoped image API.

import { openViewer } from './viewer.js';

const button = document.getElementById('open-viewer');
const series = button ? JSON.parse(button.dataset.series) : [];
if (series.length) {
  button.addEventListener('click', () => openViewer('/api/v1/shared/exam', series, series[0].id));
}
