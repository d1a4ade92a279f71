// The shared exam's page: its button opens the portal's viewer on the share-scoped image API.

import { openViewer } from './viewer.js';

const button = document.getElementById('open-viewer');
if (button && JSON.parse(button.dataset.series).length) {
  const series = JSON.parse(button.dataset.series);
  button.addEventListener('click', () => openViewer('/api/v1/shared/exam', series, series[0].id));
}
